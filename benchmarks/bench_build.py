#!/usr/bin/env python3
"""Build benchmark: `neurodeck build` against a naive genanki script, as whole processes.

For each size N: generate a synthetic deck (deterministic from --seed, not timed), then
alternate the naive reference (benchmarks/naive_build.py) and `neurodeck build` for --runs
runs each, measuring wall time and the child's peak RSS; then one more, untimed run of
neurodeck and each of its other commands samples the whole process tree's PSS (sampling
takes CPU, so it never runs beside a timed run). `--shipped` times the project's own
cards/ deck instead (or as well, with --sizes).

    python benchmarks/bench_build.py [--sizes 1000,10000,100000] [--runs 5] [--seed 1]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
NAIVE_SCRIPT = HERE / "naive_build.py"
SHIPPED_DECK = REPO / "cards"

DEFAULT_SIZES = (1_000, 10_000, 100_000)
NOTES_PER_FILE = 1_000
WARMUP_NOTES = 50

# The project's targets, shown beside the results; the harness reports, it does not fail.
SPEEDUP_TARGETS = {10_000: 8.0, 100_000: 12.0}
# The whole process tree's peak PSS; 300,000 notes may take at most 1.5x the 100,000 target
# (the main process keeps a little per note; run it with --only neurodeck: the naive
# script takes minutes there).
RSS_TARGETS_MIB = {100_000: 80.0, 300_000: 120.0}
SHIPPED_TARGET_S = 0.25
# Other commands on the same deck, as a multiple of `build`'s time (issue "one pass"), and their
# memory (the process tree's peak PSS) at most this multiple of build's.
COMMAND_TIME_TARGETS = {"check": 0.8, "export-json": 1.3, "diff": 1.3, "release-check": 1.3}
COMMAND_MEMORY_TARGET = 1.5
COMMAND_TARGET_SIZES = (10_000, 100_000)

# A small fixed vocabulary, so text is realistic in length but cheap and stable to generate.
_VOCABULARY = """
    neuron axon dendrite synapse soma myelin glia astrocyte microglia oligodendrocyte
    receptor channel vesicle transmitter dopamine serotonin glutamate gaba acetylcholine
    noradrenaline oxytocin vasopressin cortex thalamus hypothalamus hippocampus amygdala
    cerebellum striatum brainstem pons medulla nucleus ganglion spinal cord nerve tract
    potential threshold depolarisation hyperpolarisation refractory period current voltage
    sodium potassium calcium chloride pump gradient membrane conductance spike train burst
    plasticity potentiation depression learning memory encoding retrieval consolidation
    sleep attention reward motivation emotion fear stress hormone release binding uptake
    inhibition excitation feedback circuit network oscillation rhythm gamma theta alpha
    the of and in to a is by from with during after before within between across through
    which what where when how why releases activates blocks increases decreases modulates
    projects receives integrates transmits fires opens closes binds stores converts signals
    fast slow early late primary secondary local global dorsal ventral medial lateral
    anterior posterior left right inner outer small large main major minor key typical
"""
WORDS = tuple(_VOCABULARY.split())
KINDS = ("basic", "reversed", "cloze")
KIND_WEIGHTS = (70, 15, 15)
LEVELS = ("basic", "intermediate", "advanced")
SKILLS = ("recall", "recognition", "application")


# --- Synthetic deck --------------------------------------------------------------------------


@dataclass
class DeckSummary:
    """What the generator wrote, so the harness can check a build kept every note."""

    notes: int = 0
    files: int = 0
    kinds: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))


def _q(value: object) -> str:
    # JSON strings and lists are valid YAML flow scalars and sequences, with correct escaping.
    return json.dumps(value)


# Text that reads back as itself when written without quotes: starts with a letter, and holds
# none of the characters or pairs that YAML gives a meaning in block context.
_PLAIN_SAFE = re.compile(r"[A-Za-z](?:(?!: | #)[^:#'\"{}\[\],&!|>%@`\n])*[A-Za-z0-9.?*]")


def _scalar(rng: random.Random, text: str) -> str:
    """TEXT as people write it: mostly plain, some single- and some double-quoted."""
    roll = rng.random()
    if roll < 0.60 and _PLAIN_SAFE.fullmatch(text):
        return text
    if roll < 0.85:
        return "'" + text.replace("'", "''") + "'"
    return _q(text)


def _folded(text: str, indent: str) -> str:
    """TEXT as a folded block scalar over two lines (YAML joins them with one space)."""
    words = text.split(" ")
    half = max(1, len(words) // 2)
    first, second = " ".join(words[:half]), " ".join(words[half:])
    return f">-\n{indent}{first}\n{indent}{second}" if second else f">-\n{indent}{first}"


def _words(rng: random.Random, low: int, high: int) -> list[str]:
    return rng.choices(WORDS, k=rng.randint(low, high))


def _emphasise(rng: random.Random, words: list[str]) -> list[str]:
    # About 10% of fields carry Markdown, so the compiler's Markdown path is exercised.
    if rng.random() < 0.10:
        i = rng.randrange(len(words))
        words[i] = f"*{words[i]}*"
    return words


def _sentence(words: list[str], end: str) -> str:
    text = " ".join(words)
    return text[:1].upper() + text[1:] + end


def _cloze(rng: random.Random) -> str:
    first = " ".join(_words(rng, 1, 3))
    second = " ".join(_words(rng, 1, 3))
    middle = " ".join(_emphasise(rng, _words(rng, 2, 5)))
    tail = " ".join(_words(rng, 1, 4))
    return f"The {{{{c1::{first}}}}} of {middle} and the {{{{c2::{second}}}}} {tail}."


def _note_lines(rng: random.Random, number: int, summary: DeckSummary) -> list[str]:
    kind = rng.choices(KINDS, weights=KIND_WEIGHTS)[0]
    summary.kinds[kind] += 1
    lines = [f"  - id: n{number:06d}"]
    if kind != "basic":
        lines.append(f"    type: {kind}")
    if kind == "cloze":
        lines.append(f"    text: {_scalar(rng, _cloze(rng))}")
    else:
        front = _sentence(_emphasise(rng, _words(rng, 8, 15)), "?")
        lines.append(f"    front: {_scalar(rng, front)}")
        back = _sentence(_emphasise(rng, _words(rng, 3, 10)), "")
        lines.append(f"    back: {_scalar(rng, back)}")
    if rng.random() < 0.40:
        extra = _sentence(_emphasise(rng, _words(rng, 10, 25)), ".")
        # Long prose is often wrapped by hand in a folded block.
        value = _folded(extra, " " * 6) if rng.random() < 0.2 else _scalar(rng, extra)
        lines.append(f"    extra: {value}")
    tags = [f"topic::t{rng.randint(1, 10)}::s{rng.randint(1, 5)}", f"level::{rng.choice(LEVELS)}"]
    if rng.random() < 0.5:
        tags.append(f"skill::{rng.choice(SKILLS)}")
    lines.append(f"    tags: [{', '.join(tags)}]")
    if rng.random() < 0.5:
        lines.append(f"    section: {_scalar(rng, f'Section {rng.randint(1, 12)}')}")
    return lines


def generate_deck(deck_dir: Path, notes: int, seed: int) -> DeckSummary:
    """Write deck.yaml and NOTES notes over set-NNNN.yaml files of about 1,000 notes each."""
    rng = random.Random(seed)
    deck_dir.mkdir(parents=True, exist_ok=True)
    (deck_dir / "deck.yaml").write_text(
        "name: Synthetic Deck\n"
        "id: synthetic\n"
        "version: 1.0.0\n"
        "sources:\n"
        '  s1: {title: "Synthetic Source"}\n',
        encoding="utf-8",
    )
    summary = DeckSummary()
    for start in range(0, notes, NOTES_PER_FILE):
        summary.files += 1
        subdeck = f"Topic {rng.randint(1, 10)}::Part {rng.randint(1, 5)}"
        lines = [f"deck: {subdeck}", "tags: [synthetic]", "source: s1", "notes:"]
        for number in range(start + 1, min(start + NOTES_PER_FILE, notes) + 1):
            lines.extend(_note_lines(rng, number, summary))
        path = deck_dir / f"set-{summary.files:04d}.yaml"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary.notes = notes
    return summary


# --- Running builders ------------------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    seconds: float
    peak_rss_mib: float  # the largest single process (ru_maxrss from wait4)
    exit_code: int
    stderr: str
    # The whole process tree, summed and sampled; None where /proc lacks smaps_rollup.
    tree_pss_mib: float | None = None


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return kids
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                kids.extend(int(k) for k in f.read().split())
        except OSError:
            pass
    return kids


def _pss_kib(pid: int) -> int:
    # PSS shares each page among the processes that map it, so forked workers' copy-on-write
    # pages are not counted twice, as summed RSS would count them.
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


class TreeMemory:
    """Samples the summed PSS of a process and all its descendants, keeping the peak."""

    INTERVAL_S = 0.01

    def __init__(self, pid: int, *, enabled: bool = True) -> None:
        self.pid = pid
        self.peak_kib = 0
        self.available = enabled and os.path.exists(f"/proc/{os.getpid()}/smaps_rollup")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeMemory:
        if self.available:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self.available:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            total, stack = 0, [self.pid]
            while stack:
                pid = stack.pop()
                total += _pss_kib(pid)
                stack.extend(_children(pid))
            self.peak_kib = max(self.peak_kib, total)
            self._stop.wait(self.INTERVAL_S)

    @property
    def peak_mib(self) -> float | None:
        return self.peak_kib / 1024 if self.available else None


@dataclass(frozen=True)
class Builder:
    name: str
    argv: tuple[str, ...]  # the command before DECK_DIR
    output_flag: tuple[str, ...]  # what comes between DECK_DIR and OUT

    def command(self, deck_dir: Path, out: Path) -> list[str]:
        return [*self.argv, str(deck_dir), *self.output_flag, str(out)]


def find_neurodeck() -> str | None:
    """The `neurodeck` script of this Python's environment, else the one on PATH."""
    # Not resolved: a venv's python is a symlink, and its scripts live beside the link.
    beside = Path(sys.executable).parent / "neurodeck"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("neurodeck")


# Both builders run as installed code runs: with Python's cached bytecode. An installed
# package has it (pip compiles on install); an editable install gets it from the untimed
# warm-up run, unless PYTHONDONTWRITEBYTECODE forbids writing it, and compiling every module
# on every run would then be timed as start-up (0.25 s here for the shipped deck).
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run_child(command: Sequence[str], *, tree: bool = False) -> Measurement:
    """Run COMMAND to completion; return its wall time and its own peak RSS, and with
    `tree`, its process tree's peak PSS (then the time is not one to quote: reading
    smaps_rollup every few milliseconds takes CPU from the run it measures)."""
    # stderr goes to a file, not a pipe, so a chatty child can never block on a full pipe.
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=CHILD_ENV
        )
        with TreeMemory(proc.pid, enabled=tree) as sampler:
            # wait4 gives this child's rusage; RUSAGE_CHILDREN would mix every child so far.
            _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # keep Popen from reaping again
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    # ru_maxrss is KiB on Linux and bytes on macOS.
    kib = usage.ru_maxrss / 1024 if sys.platform == "darwin" else usage.ru_maxrss
    return Measurement(seconds, kib / 1024, proc.returncode, stderr, sampler.peak_mib)


def count_notes(apkg: Path) -> int | None:
    """Notes in APKG's collection, or None if its format is not a plain SQLite collection."""
    with zipfile.ZipFile(apkg) as zf:
        names = set(zf.namelist())
        # collection.anki21b is zstd-compressed, which the stdlib cannot read; skip the count.
        member = next((n for n in ("collection.anki21", "collection.anki2") if n in names), None)
        if member is None:
            return None
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(zf.extract(member, tmp))
            con = sqlite3.connect(db)
            try:
                return int(con.execute("SELECT count(*) FROM notes").fetchone()[0])
            finally:
                con.close()


def _fail(message: str) -> None:
    print(message, file=sys.stderr)
    sys.exit(1)


def build_once(
    builder: Builder, deck_dir: Path, out: Path, expect_notes: int | None, *, tree: bool = False
) -> Measurement:
    """Build DECK_DIR with BUILDER into OUT; exit 1 with its stderr if it fails."""
    out.unlink(missing_ok=True)  # so a stale file can never pass the check below
    command = builder.command(deck_dir, out)
    result = run_child(command, tree=tree)
    if result.exit_code != 0:
        _fail(
            f"{builder.name} build failed (exit {result.exit_code}): {' '.join(command)}\n"
            f"{result.stderr.rstrip()}"
        )
    if not out.is_file() or out.stat().st_size == 0:
        _fail(f"{builder.name} exited 0 but wrote no package at {out}")
    if not zipfile.is_zipfile(out):
        _fail(f"{builder.name} wrote {out}, which is not a zip file")
    if expect_notes is not None:
        # A fast build that drops notes is not a fast build; check the count once per size.
        found = count_notes(out)
        if found is not None and found != expect_notes:
            _fail(f"{builder.name} wrote {found} notes, expected {expect_notes}")
    return result


# --- Results ---------------------------------------------------------------------------------


@dataclass
class Series:
    """Every run of one builder on one deck."""

    runs: list[Measurement] = field(default_factory=list)  # timed
    memory_run: Measurement | None = None  # untimed, with the process tree sampled

    @property
    def seconds(self) -> list[float]:
        return [m.seconds for m in self.runs]

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds)

    @property
    def peak_rss_mib(self) -> float:
        every = [*self.runs, *([self.memory_run] if self.memory_run else [])]
        return max(m.peak_rss_mib for m in every)

    @property
    def peak_tree_mib(self) -> float | None:
        return None if self.memory_run is None else self.memory_run.tree_pss_mib

    def as_json(self, notes: int | None) -> dict[str, Any]:
        return {
            "seconds": [round(s, 4) for s in self.seconds],
            "median_s": round(self.median_s, 4),
            "notes_per_s": None if notes is None else round(notes / self.median_s, 1),
            "peak_rss_mib": round(self.peak_rss_mib, 1),
            "rss_mib": [round(m.peak_rss_mib, 1) for m in self.runs],
            "peak_tree_pss_mib": None if (t := self.peak_tree_mib) is None else round(t, 1),
        }


@dataclass
class SizeResult:
    notes: int
    summary: DeckSummary
    series: dict[str, Series]
    commands: dict[str, Series] = field(default_factory=dict)  # neurodeck's other commands

    def command_ratio(self, name: str) -> float:
        """Median of per-run COMMAND/build time ratios (each ran right after that build)."""
        build = self.series["neurodeck"].seconds
        pairs = zip(self.commands[name].seconds, build, strict=True)
        return statistics.median(command / built for command, built in pairs)

    def memory_ratio(self, name: str) -> float | None:
        build, command = self.series["neurodeck"].peak_tree_mib, self.commands[name].peak_tree_mib
        return None if build is None or command is None else command / build

    @property
    def speedup(self) -> float | None:
        """Median of per-pair naive/neurodeck ratios (pairs ran back to back)."""
        if set(self.series) != {"naive", "neurodeck"}:
            return None
        pairs = zip(self.series["naive"].seconds, self.series["neurodeck"].seconds, strict=True)
        return statistics.median(naive / fast for naive, fast in pairs)

    def as_json(self) -> dict[str, Any]:
        speedup = self.speedup
        return {
            "notes": self.notes,
            "files": self.summary.files,
            "kinds": self.summary.kinds,
            **{name: s.as_json(self.notes) for name, s in self.series.items()},
            "commands": {
                name: {
                    **series.as_json(self.notes),
                    "time_vs_build": round(self.command_ratio(name), 3),
                    "memory_vs_build": None
                    if (m := self.memory_ratio(name)) is None
                    else round(m, 3),
                    "time_target": COMMAND_TIME_TARGETS[name]
                    if self.notes in COMMAND_TARGET_SIZES
                    else None,
                }
                for name, series in self.commands.items()
            },
            "speedup": None if speedup is None else round(speedup, 2),
            "speedup_target": SPEEDUP_TARGETS.get(self.notes),
            "rss_target_mib": RSS_TARGETS_MIB.get(self.notes),
        }


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def print_table(
    results: list[SizeResult], shipped: Series | None, args: argparse.Namespace
) -> None:
    print(
        f"neurodeck build benchmark: seed {args.seed}, {args.runs} timed run(s) per builder, "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs"
    )
    if results:
        print(
            f"{'notes':>9}  {'builder':<14}{'median s':>10}{'notes/s':>10}{'peak MiB':>10}"
            f"{'tree MiB':>10}"
        )
    for result in results:
        label = f"{result.notes:,}"
        for name, series in [*result.series.items(), *result.commands.items()]:
            rate = result.notes / series.median_s
            tree = series.peak_tree_mib
            print(
                f"{label:>9}  {name:<14}{series.median_s:>10.3f}{rate:>10,.0f}"
                f"{series.peak_rss_mib:>10.1f}{'n/a' if tree is None else f'{tree:.1f}':>10}"
            )
            label = ""
        notes: list[str] = []
        if (speedup := result.speedup) is not None:
            line = f"speed-up {speedup:.1f}x (median of pairwise naive/neurodeck)"
            if (target := SPEEDUP_TARGETS.get(result.notes)) is not None:
                line += f"; target >={target:g}x {_verdict(speedup >= target)}"
            notes.append(line)
        rss_target = RSS_TARGETS_MIB.get(result.notes)
        if rss_target is not None and "neurodeck" in result.series:
            # The target is for the whole process tree (main process and workers), summed.
            tree = result.series["neurodeck"].peak_tree_mib
            if tree is None:
                notes.append("neurodeck tree PSS not measurable here (no /proc smaps_rollup)")
            else:
                verdict = _verdict(tree <= rss_target)
                notes.append(f"neurodeck tree PSS target <={rss_target:g} MiB {verdict}")
        for name in result.commands:
            line = f"{name} {result.command_ratio(name):.2f}x build's time"
            if result.notes in COMMAND_TARGET_SIZES:
                target = COMMAND_TIME_TARGETS[name]
                line += f" (target <={target:g}x {_verdict(result.command_ratio(name) <= target)})"
            if (memory := result.memory_ratio(name)) is not None:
                line += f", {memory:.2f}x its memory"
                if result.notes in COMMAND_TARGET_SIZES:
                    ok = memory <= COMMAND_MEMORY_TARGET
                    line += f" (target <={COMMAND_MEMORY_TARGET:g}x {_verdict(ok)})"
            notes.append(line)
        for line in notes:
            print(f"{'':>11}{line}")
    if shipped is not None:
        median = shipped.median_s
        print(
            f"shipped deck {SHIPPED_DECK.relative_to(REPO)}/: median {median:.3f} s "
            f"(min {min(shipped.seconds):.3f}) over {len(shipped.runs)} runs, "
            f"peak {shipped.peak_rss_mib:.1f} MiB; "
            f"target <={SHIPPED_TARGET_S:g} s {_verdict(median <= SHIPPED_TARGET_S)}"
        )


# --- Harness ---------------------------------------------------------------------------------


def _progress(message: str) -> None:
    # Progress goes to stderr so that --json output on stdout stays machine-readable.
    print(message, file=sys.stderr, flush=True)


def command_once(name: str, command: list[str], *, tree: bool = False) -> Measurement:
    """Run one of neurodeck's other commands; exit 1 with its stderr if it fails."""
    result = run_child(command, tree=tree)
    if result.exit_code != 0:
        _fail(
            f"{name} failed (exit {result.exit_code}): {' '.join(command)}\n"
            f"{result.stderr.rstrip()}"
        )
    return result


def other_commands(exe: str, deck_dir: Path, released: Path, work: Path) -> dict[str, list[str]]:
    """neurodeck's commands besides build, on DECK_DIR; RELEASED is a package built from it."""
    return {
        "check": [exe, "check", str(deck_dir)],
        "export-json": [
            exe,
            "export",
            str(deck_dir),
            "--format",
            "json",
            "-o",
            str(work / "export.json"),
        ],
        "diff": [exe, "diff", str(released), str(deck_dir)],
        "release-check": [exe, "release-check", str(released), str(deck_dir)],
    }


def bench_size(
    notes: int, builders: list[Builder], work: Path, args: argparse.Namespace
) -> SizeResult:
    """Generate one deck of NOTES notes, then alternate BUILDERS over args.runs runs."""
    deck_dir = (args.keep / f"synthetic-{notes}") if args.keep else (work / f"deck-{notes}")
    if deck_dir.exists():
        shutil.rmtree(deck_dir)
    summary = generate_deck(deck_dir, notes, args.seed)
    commands: dict[str, list[str]] = {}
    for builder in builders:
        if builder.name == "neurodeck":
            # neurodeck writes neurodeck.lock beside the cards on a deck's first build, and a real
            # deck has it committed; build once untimed so every timed run sees that steady state.
            # That package is also the "previous release" that diff and release-check compare to.
            released = work / f"released-{notes}.apkg"
            build_once(builder, deck_dir, released, notes)
            if args.commands:
                commands = other_commands(builder.argv[0], deck_dir, released, work)
    series = {b.name: Series() for b in builders}
    command_series = {name: Series() for name in commands}
    for run in range(args.runs):
        # Alternating builders spreads machine noise (other load, thermal state) over both.
        for builder in builders:
            out = work / f"{builder.name}.apkg"
            expect = notes if run == 0 else None
            result = build_once(builder, deck_dir, out, expect)
            series[builder.name].runs.append(result)
            _progress(
                f"  {notes:,} notes, run {run + 1}/{args.runs}, {builder.name}: "
                f"{result.seconds:.3f} s, {result.peak_rss_mib:.1f} MiB"
            )
        for name, command in commands.items():
            result = command_once(name, command)
            command_series[name].runs.append(result)
            _progress(
                f"  {notes:,} notes, run {run + 1}/{args.runs}, {name}: "
                f"{result.seconds:.3f} s, {result.peak_rss_mib:.1f} MiB"
            )
    # Memory in runs of their own: sampling the process tree every few milliseconds takes
    # CPU from the run it samples, which on a small machine would slow the parallel build
    # more than the one-process naive script.
    for builder in builders:
        if builder.name == "neurodeck":
            out = work / f"{builder.name}.apkg"
            series[builder.name].memory_run = build_once(builder, deck_dir, out, None, tree=True)
    for name, command in commands.items():
        command_series[name].memory_run = command_once(name, command, tree=True)
    for name, each in [*series.items(), *command_series.items()]:
        if (tree := each.peak_tree_mib) is not None:
            _progress(f"  {notes:,} notes, {name}: tree {tree:.1f} MiB (memory run)")
    return SizeResult(notes, summary, series, command_series)


def bench_shipped(neurodeck: Builder, work: Path, runs: int) -> Series:
    """Time `neurodeck build cards/` as a whole process, after one untimed warm-up."""
    if not (SHIPPED_DECK / "deck.yaml").is_file():
        _fail(f"no shipped deck at {SHIPPED_DECK}/deck.yaml")
    # Build a copy: a build may refresh neurodeck.lock, and a benchmark must not edit the repo.
    cards = work / "cards"
    shutil.copytree(SHIPPED_DECK, cards)
    out = work / "shipped.apkg"
    build_once(neurodeck, cards, out, None)  # warm-up; also brings the copy's lock up to date
    series = Series()
    for run in range(runs):
        result = build_once(neurodeck, cards, out, None)
        series.runs.append(result)
        _progress(f"  shipped deck, run {run + 1}/{runs}: {result.seconds:.3f} s")
    return series


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of integers: {text!r}"
        ) from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("sizes must be positive integers")
    return sizes


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=None,
        help="comma-separated note counts (default: 1000,10000,100000; none with --shipped alone)",
    )
    parser.add_argument("--runs", type=int, default=5, help="timed runs per builder (default 5)")
    parser.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    parser.add_argument(
        "--only", choices=("naive", "neurodeck"), help="run only one builder (no speed-up)"
    )
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep generated decks in DIR")
    parser.add_argument("--shipped", action="store_true", help="time `neurodeck build cards/`")
    parser.add_argument(
        "--no-commands",
        dest="commands",
        action="store_false",
        help="skip timing check, export json, diff and release-check beside each build",
    )
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.sizes is None:
        args.sizes = [] if args.shipped else list(DEFAULT_SIZES)
    if args.shipped and args.only == "naive":
        parser.error("--shipped times neurodeck; it cannot be combined with --only naive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    builders: list[Builder] = []
    if args.only != "neurodeck":
        # The naive baseline is a genanki script; neurodeck itself no longer needs genanki.
        if importlib.util.find_spec("genanki") is None:
            _fail(
                f"the naive baseline needs genanki, which {sys.executable} lacks.\n"
                "Install the benchmark extra (pip install '.[bench]'), or use --only neurodeck."
            )
        builders.append(Builder("naive", (sys.executable, str(NAIVE_SCRIPT)), ()))
    if args.only != "naive":
        exe = find_neurodeck()
        if exe is None:
            _fail(
                f"neurodeck not found beside {sys.executable} or on PATH.\n"
                "Install the project into this Python's environment (pip install -e .), "
                "run the benchmark with that environment's python, or use --only naive."
            )
        builders.append(Builder("neurodeck", (str(exe), "build"), ("-o",)))

    results: list[SizeResult] = []
    shipped: Series | None = None
    with tempfile.TemporaryDirectory(prefix="neurodeck-bench-") as tmp:
        work = Path(tmp)
        if args.sizes:
            # One untimed build per builder warms the page cache for Python and its imports,
            # so the first timed run is not penalised, and a broken builder fails fast.
            warmup = work / "warmup"
            generate_deck(warmup, WARMUP_NOTES, args.seed)
            for builder in builders:
                build_once(builder, warmup, work / "warmup.apkg", WARMUP_NOTES)
        for notes in args.sizes:
            _progress(f"{notes:,} notes:")
            results.append(bench_size(notes, builders, work, args))
        if args.shipped:
            shipped = bench_shipped(builders[-1], work, args.runs)

    if args.json:
        report = {
            "seed": args.seed,
            "runs": args.runs,
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "sizes": [r.as_json() for r in results],
            "shipped": None
            if shipped is None
            else {**shipped.as_json(None), "target_s": SHIPPED_TARGET_S},
        }
        print(json.dumps(report, indent=2))
    else:
        print_table(results, shipped, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
