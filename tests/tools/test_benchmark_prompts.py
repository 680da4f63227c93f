"""``tools/benchmark_prompts.py`` end to end on the tiny config: one round, two clicks."""
import importlib.util
import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_tiny_round_prints_the_ratio_table(capsys):
    spec = importlib.util.spec_from_file_location(
        "benchmark_prompts", os.path.join(REPO, "tools", "benchmark_prompts.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--models", "tiny", "--repeats", "1", "--clicks", "2",
                       "--image-size", "96", "128"]) == 0
    out = capsys.readouterr().out
    row = [line for line in out.splitlines() if line.startswith("| tiny")]
    assert len(row) == 1
    cells = [c.strip() for c in row[0].strip("|").split("|")]
    assert cells[1] == "96x128 -> 144x192"  # the test resize of the tiny config
    full, one, second = float(cells[2]), float(cells[5]), float(cells[6])
    assert full > 0 and one > 0 and second > 0
    ratio = float(cells[8].strip("*").rstrip("%"))  # from unrounded times
    assert abs(ratio - 100 * one / full) < 0.05 * ratio + 0.1
