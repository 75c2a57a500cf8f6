"""Rule loading: read a rule file, or every rule file in a directory, into one checked RuleSet."""

from __future__ import annotations

from pathlib import Path

from workers.rules.check import NO_EXTRA_FIELDS, ExtraFields
from workers.rules.model import RuleSet
from workers.rules.parse import ParsedFile, duplicate_names, parse_file
from workers.rules.targets import targets_in

RULE_FILE_SUFFIXES = (".yaml", ".yml")


class RuleFileError(Exception):
    """The rules cannot be used; `problems` has one line per problem, naming file, rule and field path."""

    def __init__(self, path: str, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.path = path
        self.problems = problems

    def __reduce__(self) -> tuple[type[RuleFileError], tuple[str, list[str]]]:
        return type(self), (self.path, self.problems)


def parse_rules(text: str, *, origin: str, extra_fields: ExtraFields = NO_EXTRA_FIELDS) -> RuleSet:
    """The rules in one rule file's text; `origin` names the file in problems. Raises RuleFileError.

    `extra_fields`: the CRMs' own field lists by (source, module), known besides the built-in catalogues."""
    return _rule_set(origin, [parse_file(text, origin, extra_fields=extra_fields)])


def load_rules(path: str | Path, *, extra_fields: ExtraFields = NO_EXTRA_FIELDS) -> RuleSet:
    """The rules in a rule file, or in every *.yaml / *.yml file of a directory (in name order).

    Rule names must be unique across all the files. Raises RuleFileError listing every problem in every file.
    `extra_fields`: the CRMs' own field lists by (source, module) (workers/field_lists.py), whose fields rules
    may name besides the built-in catalogues; none (offline): the built-in catalogues alone.
    """
    path = Path(path)
    return _rule_set(str(path), [_read(file, extra_fields) for file in _rule_files(path)])


def rule_targets(path: str | Path) -> frozenset[tuple[str, str]]:
    """The (source, module) pairs the rules in a file or directory name, unchecked (an unreadable file: none).

    What `crmflow rules check --online` reads the CRMs' field lists for, before the rules are checked."""
    targets: set[tuple[str, str]] = set()
    try:
        files = _rule_files(Path(path))
    except RuleFileError:
        return frozenset()
    for file in files:
        try:
            targets |= targets_in(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            continue
    return frozenset(targets)


def _rule_files(path: Path) -> list[Path]:
    """The file itself, or the rule files of a directory in name order; RuleFileError when it has none."""
    if not path.is_dir():
        return [path]
    files = sorted(
        p for p in path.iterdir() if p.suffix in RULE_FILE_SUFFIXES and p.is_file() and not p.name.startswith(".")
    )
    if not files:
        raise RuleFileError(str(path), [f"{path}: no rule files (*.yaml, *.yml) in this directory"])
    return files


def _read(file: Path, extra_fields: ExtraFields) -> ParsedFile:
    origin = str(file)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ParsedFile(origin, (), {}, (f"{origin}: no such file or directory",))
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        return ParsedFile(origin, (), {}, (f"{origin}: not UTF-8 text (line {line}, byte {exc.start + 1})",))
    except OSError as exc:
        return ParsedFile(origin, (), {}, (f"{origin}: cannot read: {exc.strerror or exc}",))
    return parse_file(text, origin, extra_fields=extra_fields)


def _rule_set(path: str, parsed: list[ParsedFile]) -> RuleSet:
    problems = [problem for file in parsed for problem in file.problems] + duplicate_names(parsed)
    if problems:
        raise RuleFileError(path, problems)
    return RuleSet(rules=tuple(rule for file in parsed for rule in file.rules))
