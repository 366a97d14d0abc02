"""Tracks: the model families a run can belong to, as peer packages the core knows only from here.

A track (`vision`: image classifiers, `shrinkbench.vision`; `llm`: causal language models,
`shrinkbench.llm`) is one package that hands the core a `Track`: its config type (from a record's
dict), how one run executes, what a failed run's record is, how a run is named, how its suite
section expands, whether a base model is made first, its CLI commands, and its listing entries
(models, strategies, data, metrics). The core (sweep, executors, store, suites, the generic CLI)
sees a run only through its track, and never imports a track's code.

Registration: a track is an entry point of the group `shrinkbench.tracks` in its distribution's
metadata (`pyproject.toml`: `vision = "shrinkbench.vision.track:TRACK"`), found on first use; a
third track (speech, say) is one package and one such line (docs/extending.md, "Adding a track").
`register_track` adds one in-process (tests, notebooks). A config's dict names its track
(`"track": "llm"`); no key = vision, as in every record before the language-model track.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from shrinkbench.core.errors import ConfigError
from shrinkbench.core.records import failure_record
from shrinkbench.core.registry import Registry

ENTRY_POINT_GROUP = "shrinkbench.tracks"
DEFAULT_TRACK = "vision"
"""The track of a config dict or suite without a `track` key (every record before the LLM track)."""


@dataclass(frozen=True)
class Listing:
    """What `shrinkbench zoo`, `strategies`, `datasets` and `metrics` show of a track: each a
    function returning rows (dicts of plain values), so listing costs only what it imports."""

    models: Callable[[str], list[dict[str, Any]]]
    """Rows of the models matching a wildcard pattern: name, params, source, ..."""
    strategies: Callable[[], list[dict[str, Any]]]
    """Rows of the registered methods: name, granularity/pattern, scope, criterion, description."""
    datasets: Callable[[str | None], list[dict[str, Any]]]
    """Rows of the data the track knows (datasets, texts) with splits and sources; the argument is
    a folder the user names (`--data-root`), or None."""
    load_metrics: Callable[[], None]
    """Imports the track's metric definitions into `shrinkbench.core.metrics.METRICS`."""


@dataclass(frozen=True)
class Track:
    name: str
    summary: str
    """One line: what the track prunes and what it measures."""
    config_from_dict: Callable[[Mapping[str, Any], str], Any]
    """A run config from its dict (a record's `config`, a worker's message), errors naming `where`."""
    execute: Callable[..., dict]
    """`execute(cfg, store, device, **runtime)` -> the run's record (status ok or failed)."""
    describe: Callable[[Any], str]
    """The one-line name of a run shown by progress bars and dry runs."""
    load_suite: Callable[..., Any]
    """`load_suite(data, where, path, added)` -> `shrinkbench.core.suite.Suite`: the suite's tables
    (its `track` key removed) expanded into validated configs."""
    listing: Listing
    register_commands: Callable[[Any], None] | None = None
    """Adds the track's own CLI commands (`prune`, `prune-llm`) to the `shrinkbench` parser."""
    prepare_base: Callable[..., Any] | None = None
    """`prepare_base(cfg, store, device, loader_workers)`: makes (trains or loads) and caches the
    base model a run starts from, before the runs; None where runs start from pretrained weights."""
    with_data_options: Callable[[Any, dict[str, Any]], Any] | None = None
    """A config with the command line's data options (`root`, `download`) applied; None: the
    track has none, and the options are refused for its suites."""
    title: str = ""
    """How messages name the track, after "the" ("language-model track"); default "<name> track"."""
    response_metric: str = "top1"
    """The metric a comparison of this track's runs is about by default (vision top-1, LLM perplexity)."""
    benchmark_method: Callable[[Sequence[Any], Sequence[str]], str | None] = field(default=lambda configs, added: None)
    """`shrinkbench benchmark`'s method of interest for a suite's configs and its `--add-strategy` list."""
    check_run_options: Callable[[Any], None] | None = None
    """Refuses, in one line, the command line's options that would not act on this track's runs."""
    check_device: Callable[[Sequence[Any], str], None] | None = None
    """`check_device(configs, device)`: refuses in one line, before any run (also a dry run), runs
    that the device named `device` (auto, cpu, cuda, cuda:N) of THIS machine cannot compute (a
    language model's dtype); called only where the executor runs them on this machine
    (`runs_here`). None: nothing to check."""
    check_save_pruned: Callable[[Any, Sequence[Any]], None] | None = None
    """Checks `--save-pruned` for these runs before any runs (the track saves its deployed models);
    None: the track saves none, and the option is refused."""
    failure_record: Callable[[Any, BaseException, str | None], dict] = failure_record
    """The `failed` record of a run that raised an unexpected error (the sweep goes on); the
    core's (`shrinkbench.core.records`) unless the track records more."""

    def __post_init__(self) -> None:
        if not self.title:
            object.__setattr__(self, "title", f"{self.name} track")

    @property
    def needs_base(self) -> bool:
        """Whether a base model is made before the runs (vision yes, a pretrained LLM no)."""
        return self.prepare_base is not None


_TRACKS: Registry[Track] = Registry("track")
_discovered = False


def register_track(track: Track) -> Track:
    """Make `track` known in this process (an installed track registers through its entry point)."""
    if not isinstance(track, Track):
        raise TypeError(f"register_track takes a shrinkbench.core.tracks.Track, got {type(track).__name__}")
    _TRACKS.register(track.name, track)
    return track


def unregister_track(name: str) -> None:
    """Forget a track registered in this process (tests)."""
    _TRACKS.remove(name)


def _discover() -> None:
    """Load every track of the installed distributions' `shrinkbench.tracks` entry points, once."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    from importlib.metadata import distributions

    # every distribution's entry points, not only the first of each name: a stale egg-info left in a
    # source checkout (found first when the checkout is the working folder) must not hide the install's
    points = {point.name: point for dist in distributions() for point in dist.entry_points
              if point.group == ENTRY_POINT_GROUP}
    for name in sorted(points):
        if name in _TRACKS:
            continue
        point = points[name]
        track = point.load()
        if not isinstance(track, Track) or track.name != point.name:
            raise ConfigError(f"entry point {point.name} = {point.value} of group {ENTRY_POINT_GROUP} is not a "
                              f"Track named {point.name!r}")
        register_track(track)
    if not _TRACKS.names():
        raise ConfigError("no shrinkbench track is installed: install the package (pip install -e .) so that its "
                          f"entry points ({ENTRY_POINT_GROUP}) are registered")


def tracks() -> list[Track]:
    """Every known track: the default track first, then by name."""
    _discover()
    return [_TRACKS.get(name) for name in sorted(_TRACKS.names(), key=lambda n: (n != DEFAULT_TRACK, n))]


def get_track(name: str, where: str = "track") -> Track:
    """The track called `name`, or a one-line error listing the known ones."""
    _discover()
    if name not in _TRACKS:
        raise ConfigError(f"{where}: unknown track {name!r}; known tracks: {', '.join(sorted(_TRACKS.names()))}")
    return _TRACKS.get(name)


def track_of(cfg_or_dict: Any) -> Track:
    """The track of a config object or of its dict (`track` key; none = vision)."""
    name = cfg_or_dict.get("track") if isinstance(cfg_or_dict, Mapping) else getattr(cfg_or_dict, "track", None)
    return get_track(name or DEFAULT_TRACK)


def config_from_dict(data: Mapping[str, Any], where: str = "config"):
    """A run config of whichever track the dict names."""
    return track_of(data).config_from_dict(data, where)


def load_all_metrics() -> None:
    """Fill the metrics registry with every track's metrics (for listing and checks)."""
    for track in tracks():
        track.listing.load_metrics()


def selected(name: str | None) -> Sequence[Track]:
    """The tracks a listing shows: all, or the one `--track` names."""
    return tracks() if name is None else [get_track(name, "--track")]


def check_devices(configs: Sequence[Any], device: str, executor) -> None:
    """Before a sweep (also a dry run): each track's `check_device` on its runs, where `executor`
    computes them on this machine (`runs_here`: local, pool); one-line ConfigErrors."""
    if not getattr(executor, "runs_here", False):
        return
    by_track: dict[int, tuple[Track, list]] = {}
    for cfg in configs:
        track = track_of(cfg)
        by_track.setdefault(id(track), (track, []))[1].append(cfg)
    for track, runs in by_track.values():
        if track.check_device is not None:
            track.check_device(runs, device)
