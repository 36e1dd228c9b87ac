"""The setup scripts do to the machine only what each command needs, and say it: services-up
brings PostgreSQL and RabbitMQ, the test command its own tools, the demo Chromium; none changes
a password or a user of the machine's services."""
from __future__ import annotations

import re
from pathlib import Path

SCRIPTS = Path(__file__).parents[2] / "scripts"
INSTALL = re.compile(r'scripts/install-missing\s+"([^"]*)"\s+"([^"]*)"\s+(?:\\\n\s*)?"([^"]+)"')


def installs(script: str) -> set[str]:
    """The Debian packages a script installs, each with a reason given."""
    text = (SCRIPTS / script).read_text()
    found = INSTALL.findall(text)
    assert all(len(why) > 20 for _, _, why in found), found  # each says why
    return {package for _, packages, _ in found for package in packages.split()}


def test_each_command_installs_only_what_it_needs() -> None:
    """services-up installed PgBouncer, Chromium and Node.js for the demo too."""
    assert installs("services-up") == {"postgresql", "postgresql-client", "rabbitmq-server"}
    assert installs("test-deps") == {"pgbouncer", "chromium", "nodejs", "npm"}
    assert installs("demo") == {"chromium"}


def test_apt_get_is_run_only_by_the_scripts_that_say_what_they_install() -> None:
    for script in SCRIPTS.iterdir():
        if script.name not in ("install-missing", "venv"):
            commands = [line for line in script.read_text().splitlines() if not line.lstrip().startswith("#")]
            assert not [line for line in commands if "apt-get" in line], script.name
    assert 'echo "installing python3-venv' in (SCRIPTS / "venv").read_text()


def test_the_test_command_brings_its_tools_before_the_tests() -> None:
    lines = [line.strip() for line in (SCRIPTS / "test").read_text().splitlines()]
    order = [lines.index(step) for step in ("scripts/services-up", "scripts/test-deps", "scripts/venv")]
    assert order == sorted(order) and order[-1] < next(n for n, line in enumerate(lines) if "pytest" in line and "exec" in line)


def test_no_script_changes_a_password_or_a_user() -> None:
    """services-up set the postgres user's password when TCP authentication failed."""
    changes = re.compile(r"\b(ALTER|CREATE|DROP)\s+(USER|ROLE)\b|\bPASSWORD\s+'|\b(passwd|chpasswd|useradd|usermod)\b|change_password"
                         r"|add_user|delete_user", re.IGNORECASE)
    for script in SCRIPTS.iterdir():
        assert not changes.search(script.read_text()), script.name
