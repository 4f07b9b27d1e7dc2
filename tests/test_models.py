import pytest
import torch

from models import get_model
from models.heads import GroupedProjection


def count(module):
    return sum(p.numel() for p in module.parameters())


def test_fingerprinter_has_exactly_the_published_parameter_count():
    model = get_model("fingerprinter")
    assert count(model) == 16_922_624
    assert count(model.encoder) == 16_873_344
    assert count(model.head) == 49_280
    layer_norm = sum(count(m) for m in model.modules() if isinstance(m, torch.nn.LayerNorm))
    assert layer_norm == 2_267_136


def test_audsearch_has_exactly_the_published_parameter_count():
    model = get_model("audsearch")
    assert count(model) == 19_968_256
    assert count(model.head) == 270_464
    assert count(model) - count(model.head) == 19_697_792


@pytest.mark.parametrize("model_str", ["fingerprinter", "audsearch"])
def test_published_models_map_log_mel_to_unit_128d_embeddings(model_str):
    torch.manual_seed(0)
    model = get_model(model_str).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 1, 256, 32) * 20 - 40)
    assert out.shape == (2, 128)
    assert torch.allclose(out.norm(dim=1), torch.ones(2), atol=1e-5)


def test_fingerprinter_encoder_ends_in_a_1024_by_1_by_1_map():
    model = get_model("fingerprinter")
    assert model.encoder(torch.zeros(1, 1, 256, 32)).shape == (1, 1024, 1, 1)


def test_width_shrinks_the_models():
    assert count(get_model("fingerprinter", width=0.25)) < count(get_model("fingerprinter")) / 10
    out = get_model("audsearch", width=0.25).eval()(torch.randn(3, 1, 256, 32))
    assert out.shape == (3, 128)


def test_divide_and_encode_head_is_one_batched_operation_equal_to_per_group_mlps():
    head = GroupedProjection(1024, 128, hidden=32, layer_norm=True)
    # The head holds stacked tensors, not 128 sub-modules.
    assert len(list(head.children())) == 0
    torch.nn.init.normal_(head.norm_weight)
    torch.nn.init.normal_(head.norm_bias)
    x = torch.randn(4, 1024)
    batched = head(x)
    for g in (0, 77, 127):
        hidden = torch.nn.functional.elu(x[:, 8 * g : 8 * g + 8] @ head.weight1[g] + head.bias1[g])
        hidden = torch.nn.functional.layer_norm(hidden, (32,), head.norm_weight[g], head.norm_bias[g])
        assert torch.allclose(batched[:, g], hidden @ head.weight2[g] + head.bias2[g], atol=1e-5)


def test_unknown_model_name_is_an_error_listing_the_choices():
    with pytest.raises(ValueError, match="unknown model_str 'resnet'.*fingerprinter, audsearch"):
        get_model("resnet")
