import json
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

from nasx.errors import NasxError
from nasx.hookspecs import hookimpl
from nasx.interfaces import Proxy
from nasx.options import positive
from nasx.plugins import Plugins


class Fake(Proxy):
    name = "fake"
    needs_network = False

    def score_genotype(self, space, genotype):
        return 1.0


class Renamed(Fake):
    name = "renamed"


def plugin_registering(*classes):
    """A plugin module that registers several components at once, through the hook."""
    module = types.SimpleNamespace()

    @hookimpl
    def nasx_register(register):
        for cls in classes:
            register(cls)

    module.nasx_register = nasx_register
    return module


def entry_point(name, distribution, module):
    """An installed entry point as importlib.metadata gives it: a name, a distribution, and load()."""
    return types.SimpleNamespace(name=name, dist=types.SimpleNamespace(name=distribution, version="1.0"),
                                 load=lambda: module)


def test_builtin_constraints_without_autoload():
    plugins = Plugins(autoload=False)
    assert plugins.names("constraint") == ["max-flops", "max-latency", "max-params"]
    assert plugins.names("proxy") == []


def test_handed_in_plugin_is_found_with_its_origin():
    plugins = Plugins(autoload=False)
    plugins.add(plugin_registering(Fake), name="proxy.fake", distribution="fake-dist", version="1.2")
    info = plugins.components()["proxy"]["fake"]
    assert (info.cls, info.distribution, info.version) == (Fake, "fake-dist", "1.2")


class Other(Fake):
    pass


class Third(Fake):
    pass


def test_a_name_claimed_by_two_classes_is_disabled_and_every_other_name_works():
    plugins = Plugins(autoload=False)
    plugins.add(plugin_registering(Fake), name="proxy.fake", distribution="dist-a")
    plugins.add(plugin_registering(Other), name="proxy.other-fake", distribution="dist-b")
    plugins.add(plugin_registering(Renamed), name="proxy.renamed", distribution="dist-c")
    assert plugins.names("proxy") == ["renamed"]
    assert plugins.get("proxy", "renamed") is Renamed
    assert plugins.names("constraint") == ["max-flops", "max-latency", "max-params"]
    (conflict,) = plugins.conflicts()
    assert (conflict.kind, conflict.name) == ("proxy", "fake")
    assert [(c.cls, c.plugin, c.distribution) for c in conflict.claimants] == [
        (Fake, "proxy.fake", "dist-a"), (Other, "proxy.other-fake", "dist-b")]
    assert any("proxy 'fake' is claimed by two plugins" in warning for warning in plugins.warnings)


def test_using_a_conflicting_name_is_a_one_line_error_naming_both_distributions_and_the_way_out():
    plugins = Plugins(autoload=False)
    plugins.add(plugin_registering(Fake), name="proxy.fake", distribution="dist-a")
    plugins.add(plugin_registering(Other), name="proxy.other-fake", distribution="dist-b")
    with pytest.raises(NasxError) as caught:
        plugins.get("proxy", "fake")
    assert str(caught.value) == (
        "proxy 'fake' is claimed by two plugins: proxy.fake (dist-a) and proxy.other-fake (dist-b); "
        "keep the first with NASX_BLOCK_PLUGINS=proxy.other-fake, or uninstall all but one"
    )


def test_a_third_claimant_is_listed_too():
    plugins = Plugins(autoload=False)
    for cls, dist in ((Fake, "dist-a"), (Other, "dist-b"), (Third, "dist-c")):
        plugins.add(plugin_registering(cls), name=f"proxy.{dist}", distribution=dist)
    with pytest.raises(NasxError, match=r"claimed by three plugins: proxy.dist-a \(dist-a\), proxy.dist-b "
                                        r"\(dist-b\) and proxy.dist-c \(dist-c\); keep the first with "
                                        r"NASX_BLOCK_PLUGINS=proxy.dist-b,proxy.dist-c"):
        plugins.get("proxy", "fake")


def test_one_plugin_registering_a_name_twice_with_two_classes_is_a_conflict_naming_the_classes():
    plugins = Plugins(autoload=False)
    plugins.add(plugin_registering(Fake, Other), name="proxy.fake", distribution="dist-a")
    with pytest.raises(NasxError, match=r"two classes of one plugin: proxy.fake \(dist-a, class .*Fake\) and "
                                        r"proxy.fake \(dist-a, class .*Other\); uninstall it"):
        plugins.get("proxy", "fake")


def test_the_same_class_registered_by_two_plugins_is_no_conflict():
    plugins = Plugins(autoload=False)
    plugins.add(plugin_registering(Fake), name="proxy.fake", distribution="dist-a")
    plugins.add(plugin_registering(Fake), name="proxy.fake-again", distribution="dist-b")
    assert plugins.get("proxy", "fake") is Fake and plugins.conflicts() == []


def installed(monkeypatch, *entry_points):
    """Make these the only entry points of group nasx."""
    import importlib.metadata

    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: list(entry_points))


def test_blocking_the_entry_point_of_one_claimant_resolves_the_conflict(monkeypatch):
    installed(monkeypatch, entry_point("proxy.fake", "dist-a", plugin_registering(Fake)),
              entry_point("proxy.other-fake", "dist-b", plugin_registering(Other)))
    with pytest.raises(NasxError, match="claimed by two plugins"):
        Plugins(autoload=True, blocked=[]).get("proxy", "fake")
    assert Plugins(autoload=True, blocked=["proxy.other-fake"]).get("proxy", "fake") is Fake


def test_distributions_sharing_an_entry_point_name_are_told_apart(monkeypatch):
    installed(monkeypatch, entry_point("proxy.fake", "dist-a", plugin_registering(Fake)),
              entry_point("proxy.fake", "dist-b", plugin_registering(Other)))
    with pytest.raises(NasxError, match=r"dist-a:proxy.fake \(dist-a\) and dist-b:proxy.fake \(dist-b\)"):
        Plugins(autoload=True, blocked=[]).get("proxy", "fake")
    assert Plugins(autoload=True, blocked=["dist-b:proxy.fake"]).get("proxy", "fake") is Fake


def test_two_entry_points_for_one_plugin_object_are_neither_a_failure_nor_a_conflict(monkeypatch):
    module = plugin_registering(Fake)
    installed(monkeypatch, entry_point("proxy.fake", "dist-a", module),
              entry_point("proxy.fake-alias", "dist-a", module))
    plugins = Plugins(autoload=True, blocked=[])
    assert plugins.get("proxy", "fake") is Fake
    assert (plugins.failures(), plugins.conflicts(), plugins.warnings) == ([], [], [])


def test_a_long_error_is_shown_in_one_bounded_line(monkeypatch):
    def load():
        raise ImportError("first line\nsecond line " + "x" * 1000)

    installed(monkeypatch, types.SimpleNamespace(name="proxy.verbose", dist=None, load=load))
    plugins = Plugins(autoload=True, blocked=[])
    (failure,) = plugins.failures()
    assert failure.error.startswith("ImportError: first line second line xxx") and failure.error.endswith("...")
    assert len(failure.error) <= 300 and "\n" not in plugins.warnings[0]


@pytest.mark.parametrize(
    "registered, error",
    [
        ((int,), "registered <class 'int'>, which is not a subclass of a nasx interface"),
        ((Renamed, type("Nameless", (Fake,), {"name": ""})), "registered Nameless without a name"),
        ((type("Misspelt", (Fake,), {"defaults": {"repeats": 1}, "option_checks": {"repeat": positive}}),),
         "Misspelt checks option 'repeat', which is not in its defaults"),
        ((type("SelfRefusing", (Fake,), {"defaults": {"repeats": 0}, "option_checks": {"repeats": positive}}),),
         "fake.repeats must be a positive integer, got 0"),
    ],
)
def test_a_wrong_registration_fails_that_plugin_alone(registered, error):
    plugins = Plugins(autoload=False)
    plugins.add(plugin_registering(*registered), name="proxy.bad", distribution="bad-dist", version="0.1")
    plugins.add(plugin_registering(Fake), name="proxy.fake", distribution="good-dist")
    assert plugins.names("proxy") == ["fake"]  # nothing of the failed plugin, not even what it registered first
    (failure,) = plugins.failures()
    assert (failure.plugin, failure.kind, failure.name, failure.distribution, failure.version) == (
        "proxy.bad", "proxy", "bad", "bad-dist", "0.1")
    assert error in failure.error
    assert any("proxy.bad (bad-dist) failed to register" in warning for warning in plugins.warnings)


def test_failing_hook_becomes_a_recorded_failure_and_a_warning():
    def broken(register):
        raise RuntimeError("boom")

    module = types.SimpleNamespace(nasx_register=hookimpl(broken))
    plugins = Plugins(autoload=False)
    plugins.add(module, name="broken", distribution="broken-dist")
    plugins.add(plugin_registering(Fake), name="good", distribution="good-dist")
    assert plugins.names("proxy") == ["fake"]
    assert any("broken" in w and "boom" in w for w in plugins.warnings)
    (failure,) = plugins.failures()
    # a plugin name that is not "kind.name" leaves the kind and the name unknown
    assert (failure.kind, failure.name, failure.error) == ("", "", "RuntimeError: boom")


def test_entry_point_that_fails_to_import_is_a_warning_and_a_failure(monkeypatch):
    import importlib.metadata

    ep = importlib.metadata.EntryPoint(name="proxy.ghost", value="nasx_no_such_module", group="nasx")
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [ep])
    plugins = Plugins()
    plugins.components()
    assert len(plugins.warnings) == 1 and "proxy.ghost" in plugins.warnings[0]
    (failure,) = plugins.failures()
    assert (failure.kind, failure.name, failure.distribution) == ("proxy", "ghost", "?")
    assert failure.error.startswith("ModuleNotFoundError")


def test_plugins_command_lists_conflicts_and_failures_with_a_status():
    from click.testing import CliRunner

    from nasx_cli.main import cli

    plugins = Plugins(autoload=False)
    plugins.add(plugin_registering(Fake), name="proxy.fake", distribution="dist-a")
    plugins.add(plugin_registering(Other), name="proxy.other-fake", distribution="dist-b")
    plugins.add(plugin_registering(int), name="proxy.bad", distribution="bad-dist")
    done = CliRunner().invoke(cli, ["plugins", "--json"], obj=plugins)
    assert done.exit_code == 0, done.output
    rows = json.loads(done.stdout)
    by_status = {status: [row for row in rows if row["status"] == status] for status in ("ok", "conflict", "failed")}
    assert {row["name"] for row in by_status["ok"]} == {"max-flops", "max-params", "max-latency", "serial", "process"}  # built in
    assert "error" not in by_status["ok"][0]
    assert [(row["name"], row["distribution"]) for row in by_status["conflict"]] == [
        ("fake", "dist-a"), ("fake", "dist-b")]
    assert all("dist-a" in row["error"] and "dist-b" in row["error"] for row in by_status["conflict"])
    (failed,) = by_status["failed"]
    assert (failed["kind"], failed["name"], failed["distribution"]) == ("proxy", "bad", "bad-dist")
    assert "not a subclass of a nasx interface" in failed["error"]
    table = CliRunner().invoke(cli, ["plugins"], obj=plugins, terminal_width=200)
    assert table.exit_code == 0
    assert "conflict" in table.stdout and "failed" in table.stdout and "dist-b" in table.stdout


def test_blocked_component_is_not_registered():
    plugins = Plugins(autoload=False, blocked=["fake"])
    plugins.add(plugin_registering(Fake), name="proxy.fake", distribution="x")
    assert plugins.names("proxy") == []


def test_installed_plugins_are_discovered_one_entry_point_each():
    plugins = Plugins(blocked=[])
    infos = plugins.all()
    found = {(i.kind, i.name) for i in infos}
    assert {("space", "nats-tss"), ("proxy", "naswot"), ("proxy", "logsynflow"), ("proxy", "skip"),
            ("searcher", "freerea"), ("combiner", "rank")} <= found
    assert plugins.components()["proxy"]["naswot"].plugin == "proxy.naswot"


def test_unknown_name_suggests_the_closest():
    plugins = Plugins(blocked=[])
    with pytest.raises(NasxError, match="did you mean 'naswot'"):
        plugins.get("proxy", "naswt")


def test_core_import_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, nasx, nasx.plugins, nasx.search, nasx.evaluator, nasx_cli.main; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


@pytest.fixture(scope="module")
def rogue_distribution(tmp_path_factory) -> Path:
    """A real distribution installed into its own folder: one entry point claims the proxy name 'naswot', one
    fails at import. Entry points are found through importlib.metadata on sys.path, so the folder on PYTHONPATH
    installs it for a subprocess without touching the environment."""
    source = tmp_path_factory.mktemp("nasx-rogue")
    (source / "pyproject.toml").write_text(textwrap.dedent("""\
        [build-system]
        requires = ["setuptools>=64"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "nasx-rogue"
        version = "0.0.1"

        [project.entry-points.nasx]
        "proxy.naswot" = "nasx_rogue_naswot:RogueNaswot"
        "proxy.rogue-broken" = "nasx_rogue_broken:Broken"

        [tool.setuptools]
        py-modules = ["nasx_rogue_naswot", "nasx_rogue_broken"]
        """))
    (source / "nasx_rogue_naswot.py").write_text(textwrap.dedent("""\
        from nasx import Proxy


        class RogueNaswot(Proxy):
            name = "naswot"
            needs_network = False

            def score_genotype(self, space, genotype):
                return 0.0
        """))
    (source / "nasx_rogue_broken.py").write_text('raise ImportError("needs a library that is not installed")\n')
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "-q",
                    "--target", str(target), str(source)], check=True, capture_output=True)
    return target


def nasx_with(target: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    path = os.pathsep.join(p for p in (str(target), os.environ.get("PYTHONPATH", "")) if p)
    return subprocess.run([sys.executable, "-m", "nasx_cli.main", *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": path, "NASX_BLOCK_PLUGINS": "", **(env or {})})


def test_installed_rogue_plugins_are_listed_and_contained(rogue_distribution):
    done = nasx_with(rogue_distribution, "plugins", "--json")
    assert done.returncode == 0, done.stderr
    rows = {(row["plugin"], row["name"]): row for row in json.loads(done.stdout)}
    for plugin in ("nasx-proxies:proxy.naswot", "nasx-rogue:proxy.naswot"):
        assert rows[plugin, "naswot"]["status"] == "conflict"
        assert "nasx-proxies" in rows[plugin, "naswot"]["error"] and "nasx-rogue" in rows[plugin, "naswot"]["error"]
    broken = rows["proxy.rogue-broken", "rogue-broken"]
    assert (broken["status"], broken["kind"], broken["distribution"], broken["version"]) == (
        "failed", "proxy", "nasx-rogue", "0.0.1")
    assert broken["error"] == "ImportError: needs a library that is not installed"
    assert rows["proxy.logsynflow", "logsynflow"]["status"] == "ok"
    assert "proxy.rogue-broken (nasx-rogue) failed to load" in done.stderr


def test_a_rogue_plugin_disables_only_the_name_it_claims(rogue_distribution):
    run = ["run", "--space", "nats-tss", "--dataset", "cifar10", "--max-evals", "2", "--no-cache", "-q",
           "-o", "repeats=1"]
    claimed = nasx_with(rogue_distribution, *run, "--proxy", "naswot")
    assert claimed.returncode == 2
    errors = [line for line in claimed.stderr.splitlines() if line.startswith("nasx: error:")]
    assert errors == [
        "nasx: error: proxy 'naswot' is claimed by two plugins: nasx-proxies:proxy.naswot (nasx-proxies) and "
        "nasx-rogue:proxy.naswot (nasx-rogue); keep the first with NASX_BLOCK_PLUGINS=nasx-rogue:proxy.naswot, "
        "or uninstall all but one"
    ], claimed.stderr
    other = nasx_with(rogue_distribution, *run, "--proxy", "logsynflow")
    assert other.returncode == 0, other.stderr
    assert "best architecture" in other.stdout


def test_the_value_the_conflict_names_blocks_the_rogue_and_keeps_the_original(rogue_distribution):
    done = nasx_with(rogue_distribution, "plugins", "--json", env={"NASX_BLOCK_PLUGINS": "nasx-rogue:proxy.naswot"})
    rows = [row for row in json.loads(done.stdout) if row["name"] == "naswot"]
    assert [(row["distribution"], row["status"]) for row in rows] == [("nasx-proxies", "ok")]


def test_blocking_a_bare_name_blocks_every_claimant(rogue_distribution):
    done = nasx_with(rogue_distribution, "plugins", "--json", env={"NASX_BLOCK_PLUGINS": "naswot"})
    assert [row for row in json.loads(done.stdout) if row["name"] == "naswot"] == []


def test_a_plugin_that_failed_to_load_is_named_with_its_error_when_used(rogue_distribution):
    done = nasx_with(rogue_distribution, "run", "--proxy", "rogue-broken", "--max-evals", "1", "--no-cache", "-q")
    assert done.returncode == 2
    assert ("nasx: error: proxy 'rogue-broken' is installed (nasx-rogue) but failed to load: ImportError: needs a "
            "library that is not installed") in done.stderr


def test_an_entry_point_names_the_component_class(monkeypatch):
    installed(monkeypatch, entry_point("proxy.fake", "dist-a", Fake))
    plugins = Plugins(autoload=True, blocked=[])
    assert plugins.get("proxy", "fake") is Fake
    assert plugins.components()["proxy"]["fake"].plugin == "proxy.fake"
    assert plugins.failures() == []


@pytest.mark.parametrize(
    "entry_point_name, error",
    [
        ("proxy.other-name", "entry point 'proxy.other-name' names test_plugins.Fake, a proxy called 'fake': name "
                             "the entry point 'proxy.fake'"),
        ("searcher.fake", "entry point 'searcher.fake' names test_plugins.Fake, a proxy called 'fake': name the "
                          "entry point 'proxy.fake'"),
    ],
)
def test_an_entry_point_whose_name_does_not_match_its_class_fails_alone(monkeypatch, entry_point_name, error):
    installed(monkeypatch, entry_point(entry_point_name, "dist-a", Fake),
              entry_point("proxy.renamed", "dist-b", Renamed))
    plugins = Plugins(autoload=True, blocked=[])
    assert plugins.names("proxy") == ["renamed"]
    (failure,) = plugins.failures()
    assert failure.plugin == entry_point_name and error in failure.error.replace(f"{Fake.__module__}.", "test_plugins.")


def test_an_entry_point_naming_neither_a_class_nor_a_hook_module_fails_alone(monkeypatch):
    installed(monkeypatch, entry_point("proxy.fake", "dist-a", types.SimpleNamespace(nasx_register_proxies=None)))
    (failure,) = Plugins(autoload=True, blocked=[]).failures()
    assert "neither a component class nor a module implementing nasx_register" in failure.error


def test_a_hook_module_registers_components_of_several_kinds():
    from nasx.interfaces import Combiner, ProxySet

    class Twice(Combiner):
        name = "twice"

        def combine(self, scores, higher_is_better):
            return scores.sum(axis=1) * 2.0

    class Pair(ProxySet):
        name = "pair"
        proxies = ("fake", "renamed")
        combiner = "twice"

    plugins = Plugins(autoload=False)
    plugins.add(plugin_registering(Fake, Twice, Pair), name="several", distribution="dist-a")
    assert (plugins.get("proxy", "fake"), plugins.get("combiner", "twice"), plugins.get("proxy-set", "pair")) == (
        Fake, Twice, Pair)
    assert {info.kind for info in plugins.all()} >= {"proxy", "combiner", "proxy-set"}


def test_a_proxy_set_must_name_proxies_and_a_combiner():
    from nasx.interfaces import ProxySet

    class Empty(ProxySet):
        name = "empty"
        combiner = "rank"

    plugins = Plugins(autoload=False)
    plugins.add(Empty, name="proxy-set.empty", distribution="dist-a")
    assert plugins.names("proxy-set") == []
    assert "names no proxies or no combiner" in plugins.failures()[0].error


def test_the_kind_table_is_derived_from_the_interfaces():
    from nasx import interfaces

    assert interfaces.KINDS == tuple(base.kind for base in interfaces.INTERFACES)
    assert all(interfaces.BASE_OF_KIND[base.kind] is base for base in interfaces.INTERFACES)
    assert Fake.kind == "proxy" and Fake().kind == "proxy"


def test_the_builtin_proxy_sets_name_installed_components():
    plugins = Plugins(blocked=[])
    assert {"az_nas", "freerea", "freerea_budget", "ga_rk"} <= set(plugins.names("proxy-set"))
    for name in plugins.names("proxy-set"):
        proxy_set = plugins.get("proxy-set", name)
        assert all(plugins.get("proxy", proxy) for proxy in proxy_set.proxies)
        plugins.get("combiner", proxy_set.combiner)
