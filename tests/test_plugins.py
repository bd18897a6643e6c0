import types

import pytest

from nasx.errors import NasxError, PluginError
from nasx.hookspecs import hookimpl
from nasx.interfaces import Proxy
from nasx.plugins import Plugins


class Fake(Proxy):
    name = "fake"
    needs_network = False

    def score_genotype(self, space, genotype):
        return 1.0


def plugin_registering(*classes):
    module = types.SimpleNamespace()

    @hookimpl
    def nasx_register_proxies(register):
        for cls in classes:
            register(cls)

    module.nasx_register_proxies = nasx_register_proxies
    return module


def test_builtin_constraints_without_autoload():
    plugins = Plugins(autoload=False)
    assert plugins.names("constraint") == ["max-flops", "max-params"]
    assert plugins.names("proxy") == []


def test_handed_in_plugin_is_found_with_its_origin():
    plugins = Plugins(autoload=False)
    plugins.add(plugin_registering(Fake), name="proxy.fake", distribution="fake-dist", version="1.2")
    info = plugins.components()["proxy"]["fake"]
    assert (info.cls, info.distribution, info.version) == (Fake, "fake-dist", "1.2")


def test_two_components_with_one_name_is_an_error_naming_both():
    class Other(Fake):
        pass

    plugins = Plugins(autoload=False)
    plugins.add(plugin_registering(Fake), name="first", distribution="dist-a")
    plugins.add(plugin_registering(Other), name="second", distribution="dist-b")
    with pytest.raises(PluginError, match="first.*dist-a.*second.*dist-b"):
        plugins.components()


def test_registering_a_non_component_is_refused():
    plugins = Plugins(autoload=False)
    plugins.add(plugin_registering(int), name="bad", distribution="bad-dist")
    with pytest.raises(PluginError, match="not a Proxy"):
        plugins.components()


def test_failing_hook_becomes_a_warning():
    def broken(register):
        raise RuntimeError("boom")

    module = types.SimpleNamespace(nasx_register_proxies=hookimpl(broken))
    plugins = Plugins(autoload=False)
    plugins.add(module, name="broken", distribution="broken-dist")
    plugins.add(plugin_registering(Fake), name="good", distribution="good-dist")
    assert plugins.names("proxy") == ["fake"]
    assert any("broken" in w and "boom" in w for w in plugins.warnings)


def test_entry_point_that_fails_to_import_is_a_warning(monkeypatch):
    import importlib.metadata

    ep = importlib.metadata.EntryPoint(name="proxy.ghost", value="nasx_no_such_module", group="nasx")
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [ep])
    plugins = Plugins()
    plugins.components()
    assert len(plugins.warnings) == 1 and "proxy.ghost" in plugins.warnings[0]


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
