import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["models.frontend_config", "models", "common.audio", "data_prep.build"])
def test_the_front_end_facts_audio_helpers_and_data_preparation_load_without_torch(module):
    code = f"import sys, {module}; print('torch' in sys.modules, 'librosa' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]


def test_models_and_the_front_end_module_hand_out_the_one_config_object():
    import models
    from models import frontend, frontend_config

    assert models.FrontEndConfig is frontend.FrontEndConfig is frontend_config.FrontEndConfig
    assert models.get_model("fingerprinter").__class__ is models.MODELS["fingerprinter"]
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        models.Nothing  # noqa: B018
