"""docker-compose.jitsi.yml merged onto docker-jitsi-meet's docker-compose.yml (the real file
from ../shared, and a trimmed copy kept here) with `docker-compose config`, as an operator runs
it after docker/gen-secrets.sh: the service, the module, JWT auth and one secret per pair."""

from __future__ import annotations

import base64
import re
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from service.config import DEFAULT_DOCTOR_FEATURES, DEFAULT_PATIENT_FEATURES, load_settings
from tests.deploy.deploy_support import (
    DATA_PATH,
    FIREBASE_PROJECT,
    HOST_DATA_PATH,
    MODULE_FILES,
    OVERLAY,
    OWN_BASE,
    PLUGIN_PATH,
    PUBLIC_URL,
    REPO,
    SERVICE_ALIAS,
    Checkout,
    make_checkout,
    module_mounts,
    render_muc_configuration,
    require_fixture,
    split_list,
)

EVENTS_URL = f"http://{SERVICE_ALIAS}:8000/api/prosody/events"


@pytest.fixture(params=["own-base", "docker-jitsi-meet"])
def base(request: pytest.FixtureRequest) -> Path:
    return OWN_BASE if request.param == "own-base" else require_fixture()


@pytest.fixture
def checkout(tmp_path: Path, base: Path) -> Checkout:
    checkout = make_checkout(tmp_path, base)
    result = checkout.gen_secrets()
    assert result.returncode == 0, result.stderr
    return checkout


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    assert isinstance(env, dict), "docker-compose 1.29 prints environment as a mapping"
    return {k: "" if v is None else str(v) for k, v in env.items()}


def test_merge_keeps_the_jitsi_stack_and_adds_the_service(checkout: Checkout) -> None:
    services = checkout.compose_config()["services"]
    assert {"web", "prosody", "jicofo", "jvb", "videocalls", "postgres"} <= set(services)
    for name in ("web", "prosody", "jicofo", "jvb"):
        assert "/jitsi/" in services[name]["image"], "the overlay must not replace Jitsi's images"

    videocalls = services["videocalls"]
    assert videocalls["build"]["context"] == str(checkout.root.parent / "videocalls")
    assert (REPO / videocalls["build"]["dockerfile"]).is_file()
    assert SERVICE_ALIAS in videocalls["networks"]["meet.jitsi"]["aliases"]
    config_dir = checkout.env()["CONFIG"]
    assert f"{config_dir}/videocalls:/data:Z" in videocalls["volumes"]
    assert videocalls["ports"] == ["127.0.0.1:8010:8000/tcp"], "published on loopback only"


def test_service_environment_is_accepted_by_the_service_settings(checkout: Checkout) -> None:
    env = environment(checkout.compose_config()["services"]["videocalls"])
    settings = load_settings(env)
    assert settings.is_production
    assert settings.database_url == "sqlite:////data/videocalls.db"
    assert settings.jitsi_domain == PUBLIC_URL.removeprefix("https://")
    assert settings.jitsi_token_subject == "meet.jitsi"
    assert settings.firebase_project_id == FIREBASE_PROJECT
    assert settings.doctor_features == DEFAULT_DOCTOR_FEATURES
    assert settings.patient_features == DEFAULT_PATIENT_FEATURES
    assert settings.admin_api_key == checkout.env()["VIDEOCALLS_ADMIN_API_KEY"]
    assert env["VIDEOCALLS_WORKERS"] == "2"
    # event_sync: off until its token is set; its host is docker-jitsi-meet's MUC component.
    assert settings.event_sync_token == ""
    assert settings.event_sync_host == "muc.meet.jitsi"
    assert settings.event_sync_max_age == 120
    assert "172.16.0.0/12" in [str(n) for n in settings.event_sync_allowed_networks]


def test_event_sync_settings_pass_through(checkout: Checkout) -> None:
    token = "0123456789abcdef0123456789abcdef"
    checkout.set("VIDEOCALLS_EVENT_SYNC_TOKEN", token)
    checkout.set("VIDEOCALLS_EVENT_SYNC_ALLOWED_NETWORKS", "172.18.0.0/16")
    checkout.set("VIDEOCALLS_EVENT_SYNC_MAX_AGE", "60")
    checkout.set("XMPP_MUC_DOMAIN", "conference.meet.example.com")
    settings = load_settings(environment(checkout.compose_config()["services"]["videocalls"]))
    assert settings.event_sync_token == token
    assert [str(n) for n in settings.event_sync_allowed_networks] == ["172.18.0.0/16"]
    assert settings.event_sync_max_age == 60
    assert settings.event_sync_host == "conference.meet.example.com"


def test_the_presence_source_passes_through(checkout: Checkout) -> None:
    default = load_settings(environment(checkout.compose_config()["services"]["videocalls"]))
    assert default.server_tracks_presence  # the overlay's signed module
    checkout.set("VIDEOCALLS_PRESENCE_SOURCE", "clients")
    chosen = load_settings(environment(checkout.compose_config()["services"]["videocalls"]))
    assert not chosen.server_tracks_presence and chosen.presence_source_explicit


def test_every_service_variable_is_one_the_service_reads() -> None:
    # config.py is the single source of truth; a name it does not read is a typo.
    read = set(re.findall(r'"([A-Z][A-Z0-9_]+)"', (REPO / "service" / "config.py").read_text()))
    read |= {"VIDEOCALLS_WORKERS", "TZ"}  # read by docker/entrypoint.sh and by libc
    overlay = OVERLAY.read_text()
    block = overlay.split("\n    videocalls:\n", 1)[1].split("\n    postgres:\n", 1)[0]
    names = set(re.findall(r"^ +- ([A-Z][A-Z0-9_]*)(?:=|$)", block, re.MULTILINE))
    assert names, "no environment found in the videocalls service"
    assert names <= read, f"not read by the service: {sorted(names - read)}"


def test_prosody_loads_the_module_with_token_affiliation(checkout: Checkout) -> None:
    prosody = checkout.compose_config()["services"]["prosody"]
    mount = f"{checkout.root.parent}/videocalls/prosody/mod_video_call_events.lua:{PLUGIN_PATH}:ro"
    assert mount in prosody["volumes"]
    missing = set(module_mounts(f"{checkout.root.parent}/videocalls")) - set(prosody["volumes"])
    assert not missing, f"files of the module not mounted (module:require fails): {missing}"
    config_dir = checkout.env()["CONFIG"]
    assert (
        f"{config_dir}/prosody/prosody-plugins-custom:/prosody-plugins-custom:Z"
        in (prosody["volumes"])
    ), "the operator's own custom plugins stay mounted"
    modules = split_list(environment(prosody)["XMPP_MUC_MODULES"])
    assert "video_call_events" in modules
    assert "token_affiliation" in modules


def test_the_module_files_are_the_module_and_the_libs_it_requires() -> None:
    # What the mount checks above compare with: prosody/*.lua is the module and exactly the
    # <name>.lib.lua files that module:require("<name>") loads, none missing and none stray.
    sources = {name: (REPO / "prosody" / name).read_text() for name in MODULE_FILES}
    required = {
        f"{name}.lib.lua"
        for text in sources.values()
        for name in re.findall(r"""module:require\s*\(?\s*["']([^"']+)["']""", text)
    }
    assert required, "the module loads its spool and delivery with module:require"
    assert set(MODULE_FILES) == {"mod_video_call_events.lua"} | required


def test_module_options_carry_the_url_and_the_shared_secret(checkout: Checkout) -> None:
    services = checkout.compose_config()["services"]
    rendered = render_muc_configuration(
        environment(services["prosody"])["XMPP_MUC_CONFIGURATION"]
    ).split("\n    ")
    options = dict(line.split(" = ", 1) for line in rendered)
    assert options["video_call_events_url"] == f'"{EVENTS_URL}"'

    # Only the module's own options: any other line would repeat one the component already
    # sets (its `storage = "memory"`, ...), which Prosody 13 reports as a duplicate option. The
    # spool does not need a storage setting (see test_the_event_spool_is_on_a_host_volume).
    assert set(options) == {
        "video_call_events_url",
        "video_call_events_secret",
        "video_call_events_waiting_room",
    }
    assert options["video_call_events_waiting_room"] == '"off"', "the waiting room is opt-in"

    secret = checkout.env()["VIDEOCALLS_EVENTS_SECRET"]
    assert options["video_call_events_secret"] == f'"{secret}"'
    assert environment(services["videocalls"])["PROSODY_EVENTS_SECRET"] == secret
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32


def test_the_event_spool_is_on_a_host_volume(checkout: Checkout) -> None:
    # The module writes its spool into Prosody's data_path whatever `storage` says; that folder
    # must be on a host volume, or recreating the container loses the undelivered events.
    prosody = checkout.compose_config()["services"]["prosody"]
    mounts = {}
    for volume in prosody["volumes"]:
        host, container, *mode = volume.split(":")
        if PurePosixPath(DATA_PATH).is_relative_to(container):
            assert "ro" not in mode, volume
            mounts[container] = host
    assert mounts, f"{DATA_PATH} is not on a volume: {prosody['volumes']}"
    container = max(mounts, key=len)  # the innermost mount holds the folder
    host = PurePosixPath(mounts[container]) / PurePosixPath(DATA_PATH).relative_to(container)
    config_dir = checkout.env()["CONFIG"]
    assert str(host) == HOST_DATA_PATH.replace("${CONFIG}", config_dir)


def test_data_path_is_the_one_docker_jitsi_meet_sets() -> None:
    # DATA_PATH, which the test above and the guide rely on, against docker-jitsi-meet's template.
    template = (require_fixture() / "prosody.cfg.lua.tmpl").read_text()
    assert re.findall(r"^\s*data_path\s*=\s*\"([^\"]*)\"", template, re.MULTILINE) == [DATA_PATH]


def test_one_jwt_secret_for_jitsi_and_the_service(checkout: Checkout) -> None:
    services = checkout.compose_config()["services"]
    prosody, videocalls = environment(services["prosody"]), environment(services["videocalls"])
    env = checkout.env()
    assert len(env["JWT_APP_SECRET"]) >= 32
    assert prosody["JWT_APP_SECRET"] == videocalls["JITSI_APP_SECRET"] == env["JWT_APP_SECRET"]
    assert prosody["JWT_APP_ID"] == videocalls["JITSI_APP_ID"] == env["JWT_APP_ID"] != ""


def test_every_join_is_authenticated_and_only_tokens_make_moderators(checkout: Checkout) -> None:
    services = checkout.compose_config()["services"]
    for name in ("web", "prosody", "jicofo"):
        env = environment(services[name])
        assert env["ENABLE_AUTH"] == "1", name
        assert env.get("AUTH_TYPE", "jwt") == "jwt", name
    assert environment(services["prosody"])["AUTH_TYPE"] == "jwt"
    assert environment(services["jicofo"])["AUTH_TYPE"] == "jwt"
    assert environment(services["web"])["ENABLE_GUESTS"] == "0"
    assert environment(services["prosody"])["ENABLE_GUESTS"] == "0"
    assert environment(services["prosody"])["JWT_ALLOW_EMPTY"] == "0"
    assert environment(services["jicofo"])["ENABLE_AUTO_OWNER"] == "0"


def test_operator_muc_modules_and_options_are_kept(checkout: Checkout) -> None:
    checkout.set("XMPP_MUC_MODULES", "muc_census")
    checkout.set("XMPP_MUC_CONFIGURATION", "muc_census_foo = true,muc_census_bar = 2")
    prosody = environment(checkout.compose_config()["services"]["prosody"])
    assert split_list(prosody["XMPP_MUC_MODULES"]) == [
        "muc_census",
        "token_affiliation",
        "video_call_events",
    ]
    rendered = render_muc_configuration(prosody["XMPP_MUC_CONFIGURATION"])
    assert rendered.startswith("muc_census_foo = true\n    muc_census_bar = 2\n    ")
    assert "video_call_events_secret" in rendered


def test_postgres_profile_shares_the_generated_password(checkout: Checkout) -> None:
    result = checkout.gen_secrets("--postgres")
    assert result.returncode == 0, result.stderr
    env = checkout.env()
    assert env["COMPOSE_PROFILES"] == "postgres"
    services = checkout.compose_config()["services"]
    postgres = services["postgres"]
    assert postgres["profiles"] == ["postgres"]
    assert "postgres.meet.jitsi" in postgres["networks"]["meet.jitsi"]["aliases"]
    password = environment(postgres)["POSTGRES_PASSWORD"]
    assert password == env["VIDEOCALLS_POSTGRES_PASSWORD"] != ""
    settings = load_settings(environment(services["videocalls"]))
    assert settings.database_url == (
        f"postgresql://videocalls:{password}@postgres.meet.jitsi:5432/videocalls"
    )


def test_a_published_image_and_another_checkout_folder(checkout: Checkout, tmp_path: Path) -> None:
    elsewhere = tmp_path / "srv" / "videocalls-src"
    elsewhere.parent.mkdir()
    elsewhere.symlink_to(REPO, target_is_directory=True)
    checkout.set("VIDEOCALLS_DIR", str(elsewhere))
    checkout.set("VIDEOCALLS_IMAGE", "registry.example.com/clinic/videocalls:1.2.3")
    services = checkout.compose_config()["services"]
    assert services["videocalls"]["image"] == "registry.example.com/clinic/videocalls:1.2.3"
    assert services["videocalls"]["build"]["context"] == str(elsewhere)
    assert (
        f"{elsewhere}/prosody/mod_video_call_events.lua:{PLUGIN_PATH}:ro"
        in (services["prosody"]["volumes"])
    )
    assert set(module_mounts(elsewhere)) <= set(services["prosody"]["volumes"])


def render_global_config(value: str) -> dict[str, str]:
    """GLOBAL_CONFIG as prosody.cfg.lua.tmpl renders it into the global section:
    `{{ join "\\n" (splitList "\\\\n" .Env.GLOBAL_CONFIG | compact) }}`, as options."""
    lines = [line for line in value.split("\\n") if line]
    return dict(line.split(" = ", 1) for line in lines)


def test_the_lobby_component_reports_knocks_with_the_same_url_and_secret(
    checkout: Checkout,
) -> None:
    prosody = environment(checkout.compose_config()["services"]["prosody"])
    assert split_list(prosody["XMPP_LOBBY_MUC_MODULES"]) == ["video_call_events"]
    # The lobby component has no raw option variable: the options are global ones.
    options = render_global_config(prosody["GLOBAL_CONFIG"])
    secret = checkout.env()["VIDEOCALLS_EVENTS_SECRET"]
    assert options == {
        "video_call_events_url": f'"{EVENTS_URL}"',
        "video_call_events_secret": f'"{secret}"',
    }


def test_the_waiting_room_turns_the_lobby_on_and_makes_the_patient_knock(
    checkout: Checkout,
) -> None:
    checkout.set("VIDEOCALLS_WAITING_ROOM", "lobby")
    checkout.set("VIDEOCALLS_PATIENT_LOBBY_BYPASS", "false")
    services = checkout.compose_config()["services"]
    prosody = environment(services["prosody"])
    rendered = render_muc_configuration(prosody["XMPP_MUC_CONFIGURATION"]).split("\n    ")
    options = dict(line.split(" = ", 1) for line in rendered)
    assert options["video_call_events_waiting_room"] == '"lobby"'
    assert prosody.get("ENABLE_LOBBY", "1") not in {"0", "false"}, "the lobby plugin stays on"
    assert "video_call_events" in split_list(prosody["XMPP_LOBBY_MUC_MODULES"])
    videocalls = environment(services["videocalls"])
    assert videocalls["JITSI_DOCTOR_LOBBY_BYPASS"] == "true"
    assert videocalls["JITSI_PATIENT_LOBBY_BYPASS"] == "false"
    settings = load_settings(videocalls)
    assert settings.doctor_lobby_bypass is True
    assert settings.patient_lobby_bypass is False


def test_operator_lobby_modules_and_global_config_are_kept(checkout: Checkout) -> None:
    checkout.set("XMPP_LOBBY_MUC_MODULES", "muc_lobby_extra")
    checkout.set("GLOBAL_CONFIG", 'log_level = "info"')
    prosody = environment(checkout.compose_config()["services"]["prosody"])
    assert split_list(prosody["XMPP_LOBBY_MUC_MODULES"]) == ["muc_lobby_extra", "video_call_events"]
    options = render_global_config(prosody["GLOBAL_CONFIG"])
    assert options["log_level"] == '"info"'
    assert "video_call_events_url" in options


def test_the_service_is_bounded_and_unprivileged(checkout: Checkout) -> None:
    """No Linux capability, never a new privilege, capped memory and processes (issue 33): a
    flood costs this container, not the Jitsi stack beside it."""
    videocalls = checkout.compose_config()["services"]["videocalls"]
    assert videocalls["cap_drop"] == ["ALL"]
    assert videocalls.get("cap_add") is None
    assert videocalls["security_opt"] == ["no-new-privileges:true"]
    assert videocalls["read_only"] is True
    assert str(videocalls["mem_limit"]).lower() in ("1g", str(1024**3))
    assert int(videocalls["pids_limit"]) == 256
    # Jitsi's own services are left as docker-jitsi-meet made them.
    assert "cap_drop" not in checkout.compose_config()["services"]["prosody"]


def test_the_hostile_network_settings_pass_through(checkout: Checkout) -> None:
    checkout.set("VIDEOCALLS_FORWARDED_ALLOW_IPS", "172.18.0.1")
    checkout.set("VIDEOCALLS_BODY_READ_TIMEOUT", "5")
    checkout.set("VIDEOCALLS_FIREBASE_ALLOWED_TENANTS", "clinic-a1b2c")
    settings = load_settings(environment(checkout.compose_config()["services"]["videocalls"]))
    assert settings.forwarded_allow_ips == ("172.18.0.1",)
    assert settings.body_read_timeout == 5.0
    assert settings.firebase_allowed_tenants == ("clinic-a1b2c",)
    assert settings.firebase_allow_anonymous is False
