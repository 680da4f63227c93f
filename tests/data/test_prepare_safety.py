"""Data preparation never loses a user's files, and the layout keeps it apart from the runtime.

* ``ManagedOutput`` (omgseg/utils/file_io.py): refusals, manifest, ``--force``, atomic commit,
  interrupted runs.
* Every ``datasets/prepare_*.py`` refuses an output location holding files it did not write.
* ``prepare_synthetic.py`` run as a real script: a user folder, a file as root, ``--force`` over a
  previous output with a user file in it, and ``kill -9`` in the middle of a generation.
* ``import omgseg`` loads no generator or converter.
"""
import importlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from omgseg.utils.file_io import MANIFEST_NAME, ManagedOutput, OutputRefusedError, read_manifest

REPO = Path(__file__).resolve().parents[2]
SYNTHETIC_CLI = REPO / "datasets" / "prepare_synthetic.py"
REFUSED = r"(not written by|has no record of writing).*--force"


def _snapshot(root: Path) -> dict:
    """Every file (bytes) and folder under ``root``, hidden ones included."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), root) + "/"] = None
        for f in filenames:
            path = os.path.join(dirpath, f)
            with open(path, "rb") as fh:
                out[os.path.relpath(path, root)] = fh.read()
    return out


def _user_folder(path: Path) -> Path:
    (path / "notes").mkdir(parents=True)
    (path / "thesis.txt").write_text("years of work")
    (path / "notes" / "todo.md").write_text("- back up")
    return path


def _managed(root, force=False, **kw):
    params = kw.pop("parameters", {"n": 1})
    return ManagedOutput(root, script="tests/prepare_x.py", version="1", parameters=params,
                         force=force, **kw)


def _write(out, files):
    with out.writing() as tmp:
        for rel, text in files.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_text(text)


# ------------------------------------------------------------------------- ManagedOutput
def test_new_output_is_written_with_a_manifest_and_is_then_up_to_date(tmp_path):
    out = _managed(tmp_path / "out")
    assert not out.up_to_date()
    _write(out, {"a.txt": "a", "sub/b.txt": "b"})
    manifest = read_manifest(tmp_path / "out" / MANIFEST_NAME)
    assert manifest["files"] == ["a.txt", "sub/b.txt"] and manifest["state"] == "complete"
    assert manifest["script"] == "tests/prepare_x.py" and manifest["parameters"] == {"n": 1}
    assert _managed(tmp_path / "out").up_to_date()
    assert not _managed(tmp_path / "out", parameters={"n": 2}).up_to_date()
    assert not _managed(tmp_path / "out", force=True).up_to_date()
    assert sorted(os.listdir(tmp_path)) == ["out"]  # the temporary sibling is gone


def test_a_folder_with_other_files_is_refused_untouched(tmp_path):
    user = _user_folder(tmp_path / "mine")
    before = _snapshot(tmp_path)
    with pytest.raises(OutputRefusedError, match=REFUSED):
        _managed(user).up_to_date()
    with pytest.raises(OutputRefusedError, match="empty or new"):
        with _managed(user).writing():
            pass
    assert _snapshot(tmp_path) == before


def test_a_file_as_root_is_refused_even_with_force(tmp_path):
    (tmp_path / "data.bin").write_bytes(b"\x00user")
    for force in (False, True):
        with pytest.raises(OutputRefusedError, match=r"data\.bin is a file, not a folder"):
            with _managed(tmp_path / "data.bin", force=force).writing():
                pass
    assert (tmp_path / "data.bin").read_bytes() == b"\x00user"
    assert sorted(os.listdir(tmp_path)) == ["data.bin"]


def test_another_tools_output_is_refused(tmp_path):
    _write(_managed(tmp_path / "out"), {"a.txt": "a"})
    other = ManagedOutput(tmp_path / "out", script="tests/other.py", version="1", parameters={})
    with pytest.raises(OutputRefusedError, match=r"written by 'tests/prepare_x\.py'"):
        other.up_to_date()


def test_rewrite_replaces_only_listed_files_and_keeps_user_files(tmp_path):
    root = tmp_path / "out"
    _write(_managed(root), {"a.txt": "old", "stale/b.txt": "old"})
    (root / "mine.txt").write_text("user")
    (root / "stale" / "mine.txt").write_text("user too")
    _write(_managed(root, parameters={"n": 2}), {"a.txt": "new", "c.txt": "new"})
    assert (root / "a.txt").read_text() == "new" and (root / "c.txt").read_text() == "new"
    assert not (root / "stale" / "b.txt").exists()  # listed before, not any more
    assert (root / "mine.txt").read_text() == "user"
    assert (root / "stale" / "mine.txt").read_text() == "user too"
    assert read_manifest(root / MANIFEST_NAME)["files"] == ["a.txt", "c.txt"]


def test_a_user_file_at_a_new_output_path_is_not_overwritten(tmp_path):
    root = tmp_path / "out"
    _write(_managed(root), {"a.txt": "old"})
    (root / "b.txt").write_text("user")
    before = _snapshot(root)
    with pytest.raises(OutputRefusedError, match=r"would overwrite files it did not write.*b\.txt"):
        _write(_managed(root, parameters={"n": 2}), {"a.txt": "new", "b.txt": "new"})
    assert _snapshot(root) == before
    _write(_managed(root, force=True), {"a.txt": "new", "b.txt": "new"})  # the user says so
    assert (root / "b.txt").read_text() == "new"


def test_a_user_file_in_the_way_of_an_output_folder_is_refused_before_any_move(tmp_path):
    root = tmp_path / "out"
    _write(_managed(root), {"a.txt": "old"})
    (root / "sub").write_text("user file where the new output puts a folder")
    before = _snapshot(root)
    for force in (False, True):
        with pytest.raises(OutputRefusedError, match=r"sub/x\.txt: a folder \(or a file on its"):
            _write(_managed(root, force=force, parameters={"n": 2}),
                   {"a.txt": "new", "sub/x.txt": "new"})
        assert _snapshot(root) == before


def test_force_adopts_a_folder_without_manifest_and_deletes_nothing(tmp_path):
    user = _user_folder(tmp_path / "old_output")
    (user / "a.txt").write_text("from an older version")
    _write(_managed(user, force=True), {"a.txt": "new"})
    assert (user / "a.txt").read_text() == "new"
    assert (user / "thesis.txt").read_text() == "years of work"
    assert (user / "notes" / "todo.md").read_text() == "- back up"


def test_failure_while_writing_keeps_the_previous_output(tmp_path):
    root = tmp_path / "out"
    _write(_managed(root), {"a.txt": "old"})
    before = _snapshot(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        with _managed(root, parameters={"n": 2}).writing() as tmp:
            (tmp / "a.txt").write_text("half")
            raise KeyboardInterrupt
    assert _snapshot(tmp_path) == before


def test_entries_inside_a_users_dataset_folder(tmp_path):
    """Named outputs beside the user's data (ADE20K / VIPSeg layouts)."""
    base = _user_folder(tmp_path / "ADE")
    (base / "theirs.json").write_text("mask2former")
    entries = dict(entries=["pan", "pan.json"], key="pan")
    with pytest.raises(OutputRefusedError, match=r"theirs\.json already exist"):
        _managed(base, entries=["theirs.json"], key="theirs").up_to_date()
    _write(_managed(base, **entries), {"pan/1.png": "x", "pan.json": "{}"})
    assert read_manifest(base / ".omgseg-manifest.pan.json")["files"] == ["pan.json", "pan/1.png"]
    assert _managed(base, **entries).up_to_date()
    with pytest.raises(ValueError, match="outside its declared entries"):
        _write(_managed(base, parameters={"n": 2}, **entries), {"elsewhere.txt": "x"})
    assert (base / "theirs.json").read_text() == "mask2former"
    assert (base / "thesis.txt").read_text() == "years of work"
    assert not [p for p in os.listdir(base) if "omgseg-tmp" in p]


def test_interrupted_moves_are_redone_without_force(tmp_path):
    """A run killed while moving files into place leaves a manifest that is not complete: the
    next run regenerates (its files are still known to be the tool's)."""
    root = tmp_path / "out"
    _write(_managed(root), {"a.txt": "old"})
    manifest = read_manifest(root / MANIFEST_NAME)
    (root / MANIFEST_NAME).write_text(json.dumps(dict(manifest, state="replacing",
                                                      files=["a.txt", "b.txt"])))
    (root / "b.txt").write_text("half-moved")
    out = _managed(root)
    assert not out.up_to_date()
    _write(out, {"a.txt": "new"})
    assert sorted(os.listdir(root)) == [MANIFEST_NAME, "a.txt"]


def test_leftover_temporary_folders(tmp_path):
    root = tmp_path / "out"
    _write(_managed(root), {"a.txt": "a"})
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    marker = {"script": "tests/prepare_x.py", "state": "staging", "files": [],
              "host": socket.gethostname()}
    for pid, name in ((dead.pid, f".out.omgseg-tmp-{dead.pid}-x"),
                      (os.getppid(), f".out.omgseg-tmp-{os.getppid()}-y")):
        (tmp_path / name).mkdir()
        (tmp_path / name / MANIFEST_NAME).write_text(json.dumps(dict(marker, pid=pid)))
    (tmp_path / ".out.omgseg-tmp-unrelated").mkdir()  # no marker: not ours, left alone
    (tmp_path / ".out.omgseg-tmp-unrelated" / "x").write_text("x")
    with pytest.raises(OutputRefusedError, match=f"Another run \\(pid {os.getppid()}\\)"):
        _managed(root).up_to_date()
    assert not (tmp_path / f".out.omgseg-tmp-{dead.pid}-x").exists()  # the dead one is cleaned
    (tmp_path / f".out.omgseg-tmp-{os.getppid()}-y").rename(tmp_path / "elsewhere")
    assert _managed(root).up_to_date()
    assert sorted(os.listdir(tmp_path)) == [".out.omgseg-tmp-unrelated", "elsewhere", "out"]


# ------------------------------------------------------------- every prepare script refuses
def _spoil(tmp_path: Path, layout: str) -> Path:
    """A user's folder, with a file in it, where a script writes; returns the folder."""
    folder = tmp_path / layout
    folder.mkdir(parents=True)
    (folder / "mine.txt").write_text("user")
    return folder


# script -> (where it writes, relative to the test folder T; its arguments for T)
SCRIPTS = {
    "prepare_synthetic.py": ("omg", lambda t: ["--root", f"{t}/omg", "--quiet"]),
    "prepare_coco_semantic.py": ("sem", lambda t: [
        "--panoptic-json", f"{t}/p.json", "--panoptic-root", str(t), "--out-dir", f"{t}/sem",
        "--no-progress"]),
    "prepare_coco_instances_from_panoptic.py": ("inst/instances.json", lambda t: [
        "--panoptic-json", f"{t}/p.json", "--panoptic-root", str(t), "--out",
        f"{t}/inst/instances.json", "--no-progress"]),
    "prepare_coco_panoptic_sample.py": ("sample_out", lambda t: [
        "--sample-dir", f"{t}/sample", "--out", f"{t}/sample_out", "--no-progress"]),
    "prepare_ade20k_sem_seg.py": ("ADEChallengeData2016/annotations_detectron2",
                                  lambda t: ["--root", str(t), "--no-progress"]),
    "prepare_ade20k_pan_seg.py": ("ADEChallengeData2016/ade20k_panoptic_val.json",
                                  lambda t: ["--root", str(t), "--splits", "val",
                                             "--no-progress"]),
    "prepare_vipseg.py": ("VIPSeg/VIPSeg_720P/images",
                          lambda t: ["--root", str(t), "--no-progress"]),
}


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_every_prepare_script_refuses_a_location_holding_user_files(script, tmp_path, capsys):
    target, argv = SCRIPTS[script]
    path = tmp_path / target
    if path.suffix == ".json":  # a file output: the user's own file of that name
        path.parent.mkdir(parents=True)
        path.write_text('{"mask2former": true}')
    else:
        _spoil(tmp_path, target)
    before = _snapshot(tmp_path)
    assert importlib.import_module(script[:-3]).main(argv(tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(path) in err
    assert re.search(REFUSED, err), err
    assert _snapshot(tmp_path) == before


# ---------------------------------------------------------- prepare_synthetic.py as a script
def _cli(root: Path, *extra: str, seed: int = 0, images: int = 2) -> list:
    return [sys.executable, str(SYNTHETIC_CLI), "--root", str(root), "--seed", str(seed),
            "--num-train-images", str(images), "--num-val-images", "1", "--num-train-videos", "0",
            "--num-val-videos", "0", "--image-size", "64", "64", "--quiet", *extra]


def test_script_refuses_a_user_folder_from_any_working_directory(tmp_path):
    """Run as ``python /path/datasets/prepare_synthetic.py`` from elsewhere: finds its sibling
    modules and the installed package without touching sys.path, and refuses the folder."""
    user = _user_folder(tmp_path / "mine")
    before = _snapshot(tmp_path)
    proc = subprocess.run(_cli(user), cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "mine is not empty and was not written by datasets/prepare_synthetic.py" in proc.stderr
    assert "--force" in proc.stderr and "Traceback" not in proc.stderr
    assert _snapshot(tmp_path) == before


def test_script_refuses_a_file_as_root(tmp_path, capsys):
    import prepare_synthetic

    (tmp_path / "omg").write_text("not a folder")
    assert prepare_synthetic.main(_cli(tmp_path / "omg", "--force")[2:]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert (tmp_path / "omg").read_text() == "not a folder"
    assert sorted(os.listdir(tmp_path)) == ["omg"]


def test_script_force_keeps_a_user_file_in_a_previous_output(tmp_path, capsys):
    import prepare_synthetic

    root = tmp_path / "omg"
    assert prepare_synthetic.main(_cli(root, images=3)[2:]) == 0
    (root / "images" / "train" / "my_photo.jpg").write_bytes(b"user jpeg")
    (root / "README.user").write_text("my notes")
    assert prepare_synthetic.main(_cli(root, "--force", images=2)[2:]) == 0
    assert "already generated" not in capsys.readouterr().out
    assert sorted(os.listdir(root / "images" / "train")) == ["000000.jpg", "000001.jpg",
                                                             "my_photo.jpg"]
    assert (root / "images" / "train" / "my_photo.jpg").read_bytes() == b"user jpeg"
    assert (root / "README.user").read_text() == "my notes"
    assert prepare_synthetic.main(_cli(root, images=2)[2:]) == 0
    assert "already generated" in capsys.readouterr().out


def test_kill_9_mid_generation_keeps_the_previous_output(tmp_path):
    import prepare_synthetic

    root = tmp_path / "omg"
    assert prepare_synthetic.main(_cli(root)[2:]) == 0
    before = _snapshot(root)
    proc = subprocess.Popen(_cli(root, seed=1, images=5000), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    staging = tmp_path / f".omg.omgseg-tmp-{proc.pid}-"
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            tmps = list(tmp_path.glob(staging.name + "*"))
            if tmps and len(list(tmps[0].glob("images/train/*.jpg"))) >= 5:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the generation ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert _snapshot(root) == before
    assert len(list(tmp_path.glob(staging.name + "*"))) == 1  # the killed run's leftover
    assert prepare_synthetic.main(_cli(root)[2:]) == 0  # same parameters: kept
    assert _snapshot(root) == before
    assert sorted(os.listdir(tmp_path)) == ["omg"]  # leftover cleaned


# ----------------------------------------------------------------------------------- layout
def test_import_omgseg_loads_no_generator_or_converter():
    code = (
        "import sys, omgseg\n"
        "from detectron2.data import DatasetCatalog\n"
        "bad = [m for m in sys.modules if m.startswith(('omgseg.synthetic', "
        "'omgseg.data.synthetic')) or m in ('panoptic_conversions', 'video_conversions')]\n"
        "print(bad, 'coco_panoptic_sample' in DatasetCatalog.list())\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, cwd=REPO, env=dict(os.environ, PYTHONPATH=""))
    assert proc.returncode == 0, proc.stderr
    # no generator module; and no dataset registered from a path outside the package
    assert proc.stdout.strip().splitlines()[-1] == "[] False"
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("omgseg.data.synthetic")


def test_scripts_do_not_edit_sys_path():
    scripts = sorted((REPO / "datasets").glob("*.py")) + sorted((REPO / "tools").glob("*.py"))
    scripts.append(REPO / "train_net.py")
    assert len(scripts) >= 12
    offenders = [p.name for p in scripts if "sys.path" in p.read_text()]
    assert offenders == []
