"""The token of the Ray instance a server starts is readable by its owner only (Ray writes it with the umask, 0644
as a rule, unless the start-up has written it first)."""

from __future__ import annotations

import stat

from training_client.local_server import ServerProcess


def test_the_ray_instance_serve_run_starts_has_its_token_readable_by_its_owner_only(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    # A HOME with no token: the Ray instance `serve run` starts writes one, as on a machine that never ran Ray.
    with ServerProcess(tmp_path / "storage", tmp_path, env={"HOME": str(home)}):  # healthy: Ray took that token
        assert stat.S_IMODE((home / ".ray" / "auth_token").stat().st_mode) == 0o600
