"""Plan -> the bash script each node runs for each stage, through the templates in templates/.

One Jinja2 environment: StrictUndefined (a missing value is an error, never an empty string in a
shell line), no autoescape, and every interpolated value goes through the `q` filter
(shlex.quote). Decisions are made in runner.plan; the templates only lay them out.
"""

from __future__ import annotations

import functools
import shlex
from pathlib import Path

import jinja2

from runner import __version__
from runner.errors import RenderError
from runner.plan import LAUNCH_LOG_SUBDIR, Plan, StagePlan
from runner.stage_args import HF_SIDE_FILES

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # shell scripts, not HTML; quoting is the `q` filter's job
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["q"] = lambda value: shlex.quote(str(value))
    return env


def template_name(stage: StagePlan) -> str:
    """One template per stage kind; training and generation share one (msrun or torchrun)."""
    if stage.launcher in ("msrun", "torchrun"):
        return "distributed.sh.j2"
    return f"{stage.kind}.sh.j2"


def arg_lines(args: tuple[str, ...] | list[str]) -> list[str]:
    """Flags with their values on one line each, every token shell-quoted."""
    lines: list[list[str]] = []
    for arg in args:
        if arg.startswith("--") or not lines:
            lines.append([arg])
        else:
            lines[-1].append(arg)
    return [" ".join(shlex.quote(tok) for tok in line) for line in lines]


def render_stage(plan: Plan, stage_name: str, node_index: int, *, source: str = "job") -> str:
    stage = plan.stage(stage_name)
    if node_index not in stage.node_indices:
        raise RenderError(f"stage {stage_name} does not run on node {node_index}")
    try:
        template = environment().get_template(template_name(stage))
        return template.render(
            plan=plan, stage=stage, node=plan.nodes[node_index], env=plan.env(node_index),
            arg_lines=arg_lines(stage.args), version=__version__, source=source,
            log_subdir=LAUNCH_LOG_SUBDIR, hf_side_files=HF_SIDE_FILES, needs_master=stage.launcher in
            ("msrun", "torchrun"))
    except jinja2.TemplateError as exc:
        raise RenderError(f"template {template_name(stage)}: {exc}") from exc


def render_scripts(plan: Plan, *, source: str = "job") -> dict[tuple[int, str], str]:
    """(node index, stage name) -> script text, for every stage on every node it runs on."""
    return {(k, stage.name): render_stage(plan, stage.name, k, source=source)
            for stage in plan.stages for k in stage.node_indices}


def write_scripts(plan: Plan, out: Path, *, source: str = "job", force: bool = False) -> list[Path]:
    """Write DIR/node<k>/<stage>.sh. Refuses to touch an existing script unless `force`.
    Everything is rendered before anything is written, so a failure leaves nothing half-written."""
    scripts = render_scripts(plan, source=source)
    targets = {out / f"node{k}" / f"{name}.sh": text for (k, name), text in scripts.items()}
    if not force:
        existing = sorted(str(p) for p in targets if p.exists())
        if existing:
            from runner.errors import InputError

            raise InputError(f"{out}: {len(existing)} script(s) already exist, e.g. {existing[0]}",
                             hint="pass --force to overwrite them, or choose another --out")
    for path, text in targets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        path.chmod(0o755)
    return sorted(targets)
