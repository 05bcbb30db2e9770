"""Registry entries take only the metadata keywords their registry declares: a misspelled one
(``modalty=``) used to be stored and never read, so the entry silently lacked what it meant to say."""

from __future__ import annotations

import pytest
from conftest import ptbench

from ptbench.backbones import BACKBONES
from ptbench.errors import PtbenchError
from ptbench.strategies import STRATEGIES

TYPO_PLUGIN = '''
from ptbench.backbones import BACKBONES


@BACKBONES.register("typo_net", modalty="image", weights=("none",))
def typo_net(spec):
    """Registered with a misspelled keyword."""
'''


def test_a_misspelled_keyword_fails_at_registration_naming_it():
    with pytest.raises(
        PtbenchError,
        match=r"backbone 'typo_net' in .*: unknown keyword 'modalty' \(did you mean 'modality'\?\)",
    ):
        BACKBONES.register("typo_net", modalty="image", weights=("none",))(lambda spec: None)
    assert "typo_net" not in BACKBONES


def test_a_keyword_of_another_registry_is_refused():
    """``lora_targets`` is a backbone's; on a strategy nothing would ever read it."""
    with pytest.raises(
        PtbenchError,
        match="unknown keyword 'lora_targets'.*a strategy takes applies, below_epochs, features, "
        "limits, space",
    ):
        STRATEGIES.register("adapter_x", lora_targets=("qkv",))(lambda *a: None)


def test_a_plugin_with_a_misspelled_keyword_is_a_one_line_error(tmp_path):
    (tmp_path / "typo_plugin.py").write_text(TYPO_PLUGIN)
    # `python -m` puts the working directory on the path: the plugin is found there
    proc = ptbench("ls", "backbones", cwd=tmp_path, env={"PTBENCH_PLUGINS": "typo_plugin"})
    assert proc.returncode != 0
    assert "unknown keyword 'modalty' (did you mean 'modality'?)" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_plugin_whose_own_code_fails_is_a_one_line_error(tmp_path):
    """A SyntaxError (or any error) in a plugin's module was a full traceback."""
    (tmp_path / "broken_plugin.py").write_text("def f(:\n    pass\n")
    proc = ptbench("ls", "backbones", cwd=tmp_path, env={"PTBENCH_PLUGINS": "broken_plugin"})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "PTBENCH_PLUGINS: 'broken_plugin' failed while importing: SyntaxError" in proc.stderr
    assert "broken_plugin.py, line 1" in proc.stderr
