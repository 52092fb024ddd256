"""tests/testbed/images.py: debootstrap reaches the mirror apt uses, or its own default when apt names none."""

from tests.testbed.images import debian_mirror, debootstrap_argv


def test_no_configured_mirror_leaves_the_choice_to_debootstrap(tmp_path):
    unrelated = tmp_path / "docker.list"
    unrelated.write_text("deb [arch=amd64] https://download.docker.com/linux/debian bookworm stable\n")
    assert debian_mirror([str(tmp_path / "missing.sources"), str(unrelated)]) is None
    argv = debootstrap_argv("/tmp/root", None)
    assert argv[-2:] == ["bookworm", "/tmp/root"]  # suite and target, nothing after them
    assert not any("://" in arg for arg in argv)


def test_the_mirror_apt_uses_is_passed_on(tmp_path):
    deb822 = tmp_path / "debian.sources"
    deb822.write_text("Types: deb\nURIs: http://mirror.example.org/debian/\nSuites: bookworm\nComponents: main\n")
    one_line = tmp_path / "sources.list"
    one_line.write_text("# comment\ndeb [signed-by=/x.gpg] http://other.example.org/debian bookworm main\n")
    assert debian_mirror([str(deb822), str(one_line)]) == "http://mirror.example.org/debian"
    assert debian_mirror([str(one_line)]) == "http://other.example.org/debian"
    assert debootstrap_argv("/tmp/root", "http://other.example.org/debian")[-1] == "http://other.example.org/debian"
