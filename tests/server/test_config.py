from pathlib import Path

import pytest

from server.config import Config, ConfigError, load_config


def test_defaults_serve_loopback_with_a_private_redis() -> None:
    config = load_config(env={})
    assert config.host == "127.0.0.1"
    assert config.port == 8080
    assert config.redis_url == ""
    assert config.media.announce_addresses == ("127.0.0.1",)
    assert config.event_loop == "uvloop"


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = tmp_path / "yunzhen.toml"
    path.write_text('port = 9000\ndemo = true\n[media]\nannounce_addresses = ["10.1.2.3"]\n'
                    '[[media.ice_servers]]\nurls = ["turn:turn.example:3478"]\n'
                    'username = "u"\ncredential = "c"\n')
    config = load_config(path, env={"YUNZHEN_PORT": "9100",
                                    "YUNZHEN_REDIS_URL": "redis://10.0.0.5:6379/0"})
    assert config.port == 9100
    assert config.demo is True
    assert config.redis_url == "redis://10.0.0.5:6379/0"
    assert config.media.announce_addresses == ("10.1.2.3",)
    assert config.media.ice_servers[0].to_browser() == {
        "urls": ["turn:turn.example:3478"], "username": "u", "credential": "c"}


@pytest.mark.parametrize(("env", "names"), [
    ({"YUNZHEN_PORT": "eighty"}, "port"),
    ({"YUNZHEN_PORT": "70000"}, "port"),
    ({"YUNZHEN_REDIS_URL": "http://x"}, "redis_url"),
    ({"YUNZHEN_DEMO": "maybe"}, "demo"),
    ({"YUNZHEN_ANNOUNCE_ADDRESSES": "not-an-ip"}, "media.announce_addresses"),
    ({"YUNZHEN_TIMEZONE": "Mars/Olympus"}, "timezone"),
    ({"YUNZHEN_EVENT_LOOP": "tokio"}, "event_loop"),
])
def test_a_bad_value_stops_the_start_naming_the_setting(env: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigError, match=names.replace(".", r"\.")):
        load_config(env=env)


def test_unknown_settings_and_broken_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("prot = 1\n")
    with pytest.raises(ConfigError, match="prot"):
        load_config(path, env={})
    path.write_text("port = \n")
    with pytest.raises(ConfigError, match=r"bad\.toml"):
        load_config(path, env={})
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml", env={})


def test_config_is_frozen() -> None:
    config = Config()
    with pytest.raises(AttributeError):
        config.port = 1  # type: ignore[misc]


def test_the_queue_policy_times_come_from_the_file_and_the_environment(tmp_path: Path) -> None:
    defaults = load_config(env={}).signaling
    assert (defaults.staff_grace, defaults.ticket_grace, defaults.decline_cooldown) == (
        20.0, 60.0, 30.0)
    path = tmp_path / "yunzhen.toml"
    path.write_text("staff_grace = 45\nticket_grace = 90.5\n")
    config = load_config(path, env={"YUNZHEN_DECLINE_COOLDOWN": "10"}).signaling
    assert (config.staff_grace, config.ticket_grace, config.decline_cooldown) == (
        45.0, 90.5, 10.0)


@pytest.mark.parametrize(("env", "name"), [
    ({"YUNZHEN_STAFF_GRACE": "-1"}, "staff_grace"),
    ({"YUNZHEN_TICKET_GRACE": "1"}, "ticket_grace"),
    ({"YUNZHEN_DECLINE_COOLDOWN": "soon"}, "decline_cooldown"),
    ({"YUNZHEN_DECLINE_COOLDOWN": "7200"}, "decline_cooldown"),
])
def test_a_bad_policy_time_stops_the_start_naming_it(env: dict[str, str], name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_config(env=env)


def test_the_limits_and_redis_memory_come_from_the_file_and_the_environment(
        tmp_path: Path) -> None:
    defaults = load_config(env={})
    limits = defaults.signaling
    assert (limits.max_tickets_per_socket, limits.max_tickets_per_address,
            limits.ticket_creations_per_minute, limits.callbacks_per_minute,
            limits.callbacks_per_phone_per_day, limits.max_sockets_per_address,
            limits.events_per_second, limits.event_burst, limits.ticket_keep_hours) == (
        1, 3, 6, 3, 3, 20, 20.0, 40, 48)
    assert (defaults.redis_maxmemory_mb, defaults.redis_memory_alert_percent) == (512, 80)
    path = tmp_path / "yunzhen.toml"
    path.write_text("max_tickets_per_address = 12\nredis_maxmemory_mb = 2048\n")
    config = load_config(path, env={"YUNZHEN_MAX_SOCKETS_PER_ADDRESS": "0",
                                    "YUNZHEN_EVENTS_PER_SECOND": "7.5"})
    assert (config.signaling.max_tickets_per_address, config.signaling.max_sockets_per_address,
            config.signaling.events_per_second, config.redis_maxmemory_mb) == (12, 0, 7.5, 2048)


@pytest.mark.parametrize(("env", "name"), [
    ({"YUNZHEN_MAX_TICKETS_PER_ADDRESS": "-1"}, "max_tickets_per_address"),
    ({"YUNZHEN_CALLBACKS_PER_PHONE_PER_DAY": "many"}, "callbacks_per_phone_per_day"),
    ({"YUNZHEN_EVENTS_PER_SECOND": "-2"}, "events_per_second"),
    ({"YUNZHEN_EVENT_BURST": "0"}, "event_burst"),
    ({"YUNZHEN_TICKET_KEEP_HOURS": "0"}, "ticket_keep_hours"),
    ({"YUNZHEN_REDIS_MAXMEMORY_MB": "1"}, "redis_maxmemory_mb"),
    ({"YUNZHEN_REDIS_MEMORY_ALERT_PERCENT": "120"}, "redis_memory_alert_percent"),
])
def test_a_bad_limit_stops_the_start_naming_it(env: dict[str, str], name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_config(env=env)


def test_media_forwarding_is_read_from_the_environment_and_checked() -> None:
    assert load_config(env={"YUNZHEN_MEDIA_FORWARDING": " RTP "}).media.forwarding == "rtp"
    assert load_config(env={"YUNZHEN_MEDIA_FORWARDING": "frame"}).media.forwarding == "frame"
    with pytest.raises(ConfigError, match=r"media\.forwarding"):
        load_config(env={"YUNZHEN_MEDIA_FORWARDING": "packets"})
