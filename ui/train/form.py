"""The Train page's New run tab: dataset, architecture and its knobs, hyperparameters; each widget drawn from
its setting (cnn_core/core/settings.py: kind, range, label, help, section) with, under it, what validate() says is
wrong with it. Launch refuses until nothing is. A setting added to TrainConfig appears here by itself."""
from __future__ import annotations

import copy

import streamlit as st

from cnn_core.config import ConfigError, TrainConfig, field_label
from cnn_core.core import people
from cnn_core.core.settings import Setting
from cnn_core.runs import owners, store
from cnn_core.train import jobs, presets
from ui import nav, signin, views
from ui.train import actions, state
from ui.train.state import field, pkey

KEEP = "session"    # widget values survive leaving the page and coming back
BASICS = "basics"   # the section on the first screen, beside dataset and model: what a beginner chooses
# Everything else is under More settings, in these groups (a Setting's section names its group), placed
# top to bottom in More settings' three columns as COLUMNS says (the optimizer's column is the tallest).
GROUPS = {"optimizer": "Optimizer and schedule", "regularisation": "Regularisation", "init": "Initialisation",
          "augmentation": "Augmentation", "stopping": "Early stopping", "device": "Precision and device",
          "reproducibility": "Reproducibility and logging"}
COLUMNS = (("optimizer", "regularisation"), ("init", "augmentation", "stopping"), ("device", "reproducibility"))
# Under Initialisation when zeros is picked: why it cannot learn.
ZEROS_NOTE = ("Zeros cannot learn: every unit in a layer gets the same gradient, so they stay identical, and with "
              "all weights zero the gradients to earlier layers are zero too.")
DRAWN = ("choice", BASICS, *GROUPS)   # every section a setting may name


def _archs():
    from cnn_core.nets import architectures  # torch

    return architectures.ARCHITECTURES


def _datasets():
    """The datasets a run may use here: the built-in ones and, in class mode, the added ones this person may
    open (owners.visible), by name."""
    from cnn_core.data import catalog  # torch

    return {i.id: i for i in owners.visible(list(catalog.datasets().values()), signin.me())}


def load_config(config: TrainConfig) -> list[str]:
    """Fill the form with `config` (before the widgets draw: a callback or the page top).
    A value its widget cannot hold (text for a number, an unknown choice: a hand-edited or foreign run.json)
    is not taken: the field keeps its value and the returned notes name it. Returns those notes."""
    notes, archs = [], _archs()
    form = views.form_settings(type(config))
    for name, value in views.form_values(config).items():
        if problem := form[name].kind_problem(value):
            notes.append(f"{name}: {views.shown(value)} {problem}; kept {st.session_state.get(field(name))!r}")
        else:
            st.session_state[field(name)] = value
    arch = archs[st.session_state[field("arch")]]
    given = config.arch_params if config.arch == arch.id and isinstance(config.arch_params, dict) else {}
    for p in arch.params:
        value = p.widget_value(given.get(p.name, p.default))
        if problem := p.kind_problem(value):
            notes.append(f"arch_params.{p.name}: {views.shown(value)} {problem}; the default {p.default!r} is used")
            value = p.widget_value(p.default)
        st.session_state[pkey(arch.id, p.name)] = value
    known = {p.name for p in arch.params}
    notes += [f"arch_params.{k}: unknown to {arch.id}; left out" for k in given if k not in known]
    st.session_state[field("name")] = ""
    return notes


def init_state(cls: type = TrainConfig) -> None:
    """Defaults for every widget, once per session."""
    if st.session_state.get(state.READY):
        return
    for arch in _archs().values():
        for p in arch.params:
            # a copy: a default list (the custom network's layers) is one object every session shares
            st.session_state[pkey(arch.id, p.name)] = copy.deepcopy(p.widget_value(p.default))
    st.session_state[field("arch")] = cls().arch
    load_config(cls())
    st.session_state[state.READY] = True


def current(cls: type = TrainConfig) -> tuple[TrainConfig, dict[str, str], str]:
    """The config the form holds now, its errors by field, and the run name."""
    ss = st.session_state
    if ss.get(field("dataset")) not in _datasets():     # one this person may not use (a clone's): the default
        ss[field("dataset")] = cls().dataset
    values = {name: ss.get(field(name)) for name in views.form_settings(cls)}
    arch = _archs()[values["arch"]]
    params = {p.name: ss.get(pkey(arch.id, p.name), p.default) for p in arch.params}
    config = views.config_from_form(values, params, cls)
    errors = config.validate()
    name = (ss.get(field("name")) or "").strip()
    if name:
        try:
            store.clean_name(name)
        except ValueError as exc:
            errors["name"] = str(exc)
    return config, errors, name


# ---- widgets ------------------------------------------------------------------------------------
def _error(errors: dict, name: str) -> None:
    if name in errors:
        st.error(views.md(errors[name]), icon=":material/error:")   # it may quote a cloned run's value


def _tip(spec: Setting, code_name: str | None = None) -> str:
    tip = spec.help
    if spec.kind in ("int", "float"):
        tip += f" Allowed: {spec.span()}" + (f" {spec.unit}" if spec.unit else "") + \
            ("" if spec.default is None else f"; default {spec.default}") + "."
    return tip + (f" (`{code_name}`)" if code_name else "")


MARK = " ✦"   # after the label of a field the applied preset changed


def _marked(name: str) -> str:
    """MARK when the preset applied changed field `name` ("lr", "arch_params.dropout"), else ""."""
    applied = st.session_state.get(state.PRESET_APPLIED)
    return MARK if applied and name in applied["changed"] else ""


def widget(spec: Setting, k: str, disabled: bool = False, tip: str | None = None, mark: str = "",
           options: list | None = None, **kw) -> None:
    """The widget a setting's kind asks for, under session key `k`; `mark` follows its label. options: the
    choices offered, when not all of the setting's (the datasets this person may use)."""
    common = dict(key=k, help=tip or _tip(spec), disabled=disabled, persist_state=KEEP)
    label = spec.title + mark
    if spec.kind in ("int", "float"):
        whole = spec.kind == "int"
        st.number_input(label, step=spec.step or (1 if whole else 0.05), format=spec.fmt or
                        (None if whole else "%.2f"), placeholder=spec.placeholder, **common, **kw)
    elif spec.kind == "bool":
        st.checkbox(label, **common, **kw)
    elif spec.kind == "choice" or spec.choices:   # text with suggestions (device): what this machine has
        options = list(spec.options() if options is None else options)
        if spec.kind == "text" and st.session_state.get(k) not in options and st.session_state.get(k):
            options.append(st.session_state[k])   # a cloned run's cuda:3 stays shown, with its error
        st.selectbox(label, options, **common, **kw)
    else:
        st.text_input(label, **common, **kw)


def _field(errors: dict, spec: Setting, **kw) -> None:
    on = spec.when is None or st.session_state.get(field(spec.when[0])) == spec.when[1]
    widget(spec, field(spec.name), disabled=not on, mark=_marked(spec.name), **kw)
    _error(errors, spec.name)


def section(errors: dict, name: str, cls: type = TrainConfig) -> None:
    """The settings of section `name`, two to a row in their declared order (one left alone spans it); a
    checkbox has a row to itself (beside another field its label was cut: "Mirror at test t…")."""
    rows: list[list[Setting]] = []
    for spec in (s for s in views.form_settings(cls).values() if s.section == name):
        if spec.kind != "bool" and rows and len(rows[-1]) == 1 and rows[-1][0].kind != "bool":
            rows[-1].append(spec)
        else:
            rows.append([spec])
    for row in rows:
        for col, spec in zip(st.columns(2, vertical_alignment="bottom") if len(row) == 2 else [st.container()], row):
            with col:
                _field(errors, spec)


def choice_section(errors: dict, cls: type = TrainConfig) -> None:
    """Dataset and architecture, one under the other (wide enough for their names), the presets, and what
    the architecture teaches and fixes."""
    datasets, archs, form = _datasets(), _archs(), views.form_settings(cls)
    _field(errors, form["dataset"], options=[d for d in form["dataset"].options() if d in datasets],
           format_func=lambda d: datasets[d].title)
    _field(errors, form["arch"], format_func=lambda a: archs[a].title)
    preset_row(cls)
    arch = archs[st.session_state[field("arch")]]
    st.markdown(f"**{arch.title}.** {arch.teaches}")
    if arch.fixes:
        st.caption(f":material/build: What the tutorial got wrong, fixed here: {arch.fixes}")
    slips(arch.id, errors)


def slips(arch_id: str, errors: dict) -> None:
    """The tutorials' slips where they bite, with this model's true figures (cnn_core.nets.slips)."""
    if "dataset" in errors:
        return
    from cnn_core.nets import architectures
    from cnn_core.nets import slips as figures

    info = _datasets()[st.session_state[field("dataset")]]
    shape, classes = tuple(info.input_shape), len(info.classes)
    if arch_id == "res-net-deep" and st.toggle("Show the tutorial's `n_blocks * [ResBlock(n)]`", key=state.SLIP_BLOCKS,
                                                help="What the tutorial's one line builds, against n blocks of their own."):
        params = {p.name: st.session_state.get(pkey(arch_id, p.name), p.default) for p in _archs()[arch_id].params}
        try:
            with architectures.on_meta():      # counts only: nothing of the model is allocated in the server
                f = figures.shared_blocks(shape, classes, int(params["n_chans1"]), int(params["n_blocks"]))
        except (ValueError, TypeError) as exc:
            st.caption(f"(not computed: {exc})")
        else:
            st.info(f"`nn.Sequential(*({f['n_blocks']} * [ResBlock({params['n_chans1']})]))` lists **one** block "
                    f"{f['n_blocks']} times: one set of weights applied {f['n_blocks']} times. That net has "
                    f"**{f['tutorial']:,}** parameters; with {f['n_blocks']} blocks of their own (built here) it has "
                    f"**{f['fixed']:,}**: {f['n_blocks'] - 1} × {f['block']:,} more. Both run {f['n_blocks']} "
                    f"blocks deep; only the second can learn {f['n_blocks']} different things.",
                    icon=":material/content_copy:")
    with st.expander("Why the model ends in logits, not Softmax", icon=":material/function:"):
        f = figures.softmax_twice(classes)
        st.markdown(
            f"CrossEntropyLoss applies (log-)softmax itself. A tutorial model that ends in `nn.Softmax` gets "
            f"softmax twice. For a confident, right answer on {classes} classes (logits 4, 1, −2, … for the true "
            f"class first): the loss on the logits is **{f['logits']['loss']:.3f}**; on softmax(logits) it is "
            f"**{f['softmax first']['loss']:.3f}**, and it can never go below **{f['floor']:.3f}** (a perfect "
            f"one-hot still goes through a softmax). The gradient reaching the logits shrinks from "
            f"{f['logits']['grad']:.3f} to {f['softmax first']['grad']:.3f}: learning slows. Output logits and "
            "let the loss do the softmax; `log_softmax` pairs with `NLLLoss`.")


def model_knobs(errors: dict) -> None:
    """The architecture's own knobs (each a Setting of architectures.ARCHITECTURES), two to a row."""
    arch = _archs()[st.session_state[field("arch")]]
    knobs = [q for q in arch.params if q.kind != "layers"]     # a layer list: the editor draws it
    cols = st.columns(2)
    for i, p in enumerate(knobs):
        with cols[i % 2]:
            widget(p, pkey(arch.id, p.name), tip=_tip(p, p.name), mark=_marked(f"arch_params.{p.name}"))
            _error(errors, f"arch_params.{p.name}")


def _changed(cls: type = TrainConfig) -> list[str]:
    """The settings under More settings whose value is not their default (the model's knobs included)."""
    ss, form = st.session_state, views.form_settings(cls)
    out = [n for n, spec in form.items() if spec.section in GROUPS and ss.get(field(n)) != spec.default]
    arch = _archs()[ss[field("arch")]]
    out += [p.name for p in arch.params if p.kind != "layers" and ss.get(pkey(arch.id, p.name)) != p.widget_value(p.default)]
    return out + (["processes"] if int(ss.get(state.PROCESSES) or 1) != 1 else [])


def more_settings(errors: dict, cls: type = TrainConfig) -> None:
    """Every other setting, in groups, under one header that says how many differ from their defaults;
    open when one of them is what keeps Launch off."""
    form, n = views.form_settings(cls), len(_changed(cls))
    inside = {e for e in errors if e.startswith("arch_params.") or (e in form and form[e].section in GROUPS)}
    # Keyed: a count that changes in the label would otherwise make it a new expander, closed under the hand
    # that just changed a setting in it. `expanded` opens it when it is first drawn.
    with st.expander("More settings" + (f" ({n} changed)" if n else ""), expanded=bool(inside),
                     icon=":material/tune:", key=state.MORE):
        arch = _archs()[st.session_state[field("arch")]]
        if any(p.kind != "layers" for p in arch.params):
            st.markdown(f"**Model: {views.md(arch.title)}**")
            model_knobs(errors)
        for column, names in zip(st.columns(3, gap="medium"), COLUMNS):
            with column:
                for name in names:
                    st.markdown(f"**{GROUPS[name]}**")
                    section(errors, name, cls)
                    if name == "device":
                        st.caption(views.precision_note(st.session_state.get(field("amp")),
                                                        st.session_state.get(field("device")) or "auto"))
                        processes_input(st)
                    if name == "init" and st.session_state.get(field("init")) == "zeros":
                        st.caption(ZEROS_NOTE)


def new_run(cls: type = TrainConfig) -> None:
    """The whole New run tab: Launch, what a beginner chooses (dataset, model, preset, epochs, learning
    rate, batch size) beside the model's layers, More settings, and the layer editor for your own layers."""
    _left_preset(cls)
    config, errors, _ = current(cls)
    clone_box(cls)
    launch_bar(errors, "top", cls)
    choose, layers = st.columns([5, 6], gap="large")
    with choose:
        choice_section(errors, cls)
        section(errors, BASICS, cls)
        st.text_input("Run name (optional)", key=field("name"), max_chars=store.MAX_NAME, persist_state=KEEP,
                      placeholder="default: model, data, optimizer, lr, batch, epochs",
                      help="A name to find this run by in lists; empty = a name made of its main settings.")
        _error(errors, "name")
    with layers:
        st.subheader("Layers of the model")
        layer_table(config, errors)
    if config.arch == "custom" and "dataset" not in errors:
        from ui.train import layer_editor

        info = _datasets()[config.dataset]
        layer_editor.editor(tuple(info.input_shape), len(info.classes),
                            None if "batch_size" in errors else int(config.batch_size))
    more_settings(errors, cls)
    form = views.form_settings(cls)
    shown = set(form) | {"name"} | {e for e in errors if e.startswith("arch_params.")}
    for wrong in sorted(set(errors) - shown):
        st.error(f"{views.error_labels({wrong: ''}, None)[0]}: {views.md(errors[wrong])}")
    launch_bar(errors, "bottom", cls)


def preset_row(cls: type = TrainConfig) -> None:
    """The dataset's presets (cnn_core/train/presets.py): picking one fills the form at once (the fields it
    changed marked), Undo puts the form back; what it is for and what it reached here below."""
    found = presets.for_dataset(st.session_state[field("dataset")])
    if not found:
        return
    pick_col, undo_col = st.columns([3, 1], vertical_alignment="bottom")
    pick = pick_col.selectbox("Preset", list(found), key=state.PRESET, index=None, placeholder="start from a preset",
                              on_change=apply_preset, args=(cls,),
                              help="Named settings for this dataset: `tutorial` is what the tutorial did, `fast` "
                                   "the quickest way found here to a good model. Picking one fills the form at "
                                   f"once and marks what it changed with{MARK}; your seed and device stay.")
    undo_col.button("Undo", key=state.PRESET_UNDO, disabled=not st.session_state.get(state.PRESET_APPLIED),
                    on_click=undo_preset, args=(cls,), icon=":material/undo:", width="stretch",
                    help="Put the form back as it was before the preset.")
    if pick in found:
        st.caption(found[pick].purpose + (f" Here: {found[pick].measured}." if found[pick].measured else ""))
    nav.show_flash(state.PRESET_FLASH)


def _form_values(config: TrainConfig) -> dict:
    """A config's values as the form compares them: arch_params flattened to arch_params.<name>."""
    values = {k: v for k, v in config.to_dict().items() if k != "arch_params"}
    return values | {f"arch_params.{k}": v for k, v in (config.arch_params or {}).items()}


def apply_preset(cls: type = TrainConfig) -> None:
    """The preset just picked, into the form over what it held before any preset (picking another one
    replaces the first); seed, device and the rest stay. No preset (the box cleared): as Undo."""
    ss = st.session_state
    name, applied = ss.get(state.PRESET), ss.get(state.PRESET_APPLIED)
    if not name:
        undo_preset(cls)
        return
    config, _, _ = current(cls)
    before = applied["before"] if applied else config.to_dict()
    values = {**before, **presets.values(name, config.dataset)}
    notes = load_config(cls(**values))
    was, now = _form_values(cls(**before)), _form_values(current(cls)[0])
    changed = [k for k in now if k != "dataset" and now[k] != was.get(k)]
    ss[state.PRESET_APPLIED] = {"name": name, "dataset": config.dataset, "arch": now["arch"], "before": before,
                                "changed": changed}
    told = ", ".join(f"{_label(k, now['arch'], cls)} " + (f"{views.md(_plain(was[k]))} → " if k in was else "")
                     + views.md(_plain(now[k])) for k in changed[:8]) + (f" and {len(changed) - 8} more" if len(changed) > 8 else "")
    nav.flash(state.PRESET_FLASH, "warning" if notes else "success",
              f"Applied the {views.md(name)} preset: " + (told or "the form held its values already")
              + f" (marked{MARK}). Undo puts the form back."
              + (" Not carried over: " + "; ".join(map(views.md, notes)) + "." if notes else ""))


def _label(name: str, arch: str, cls: type = TrainConfig) -> str:
    """A field's label as the form shows it ("Learning rate"; an architecture knob's own title)."""
    if name.startswith("arch_params."):
        knob = {p.name: p for p in _archs()[arch].params}.get(name.partition(".")[2])
        return knob.title if knob else name
    return field_label(name, cls)


def _plain(value) -> str:
    """A value as a person reads it: 0.1, onecycle, True; nothing for none."""
    return "none" if value is None else str(value)


def undo_preset(cls: type = TrainConfig) -> None:
    """The form as it was before the preset, the preset box cleared."""
    ss = st.session_state
    applied = ss.pop(state.PRESET_APPLIED, None)
    ss[state.PRESET] = None
    if applied:
        load_config(cls(**applied["before"]))
        nav.flash(state.PRESET_FLASH, "info", f"Undone: the form is as it was before the {views.md(applied['name'])} "
                                              "preset.")


def _left_preset(cls: type = TrainConfig) -> None:
    """A dataset or architecture changed after a preset was applied: its values were for that pair, so
    they go back to what they were before it (the new choice stays), and the person is told which."""
    ss = st.session_state
    applied = ss.get(state.PRESET_APPLIED)
    if not applied:
        return
    dataset, arch = ss.get(field("dataset")), ss.get(field("arch"))
    if dataset == applied["dataset"] and arch == applied["arch"]:
        return
    ss.pop(state.PRESET_APPLIED)
    ss[state.PRESET] = None
    before = {**applied["before"], "dataset": dataset, "arch": arch}
    if arch != applied["before"].get("arch"):
        before.pop("arch_params", None)         # another model's knobs: its own defaults (or what it held)
    load_config(cls(**before))
    ss[field("dataset")], ss[field("arch")] = dataset, arch
    what = "dataset" if dataset != applied["dataset"] else "model"
    undone = [k for k in applied["changed"] if k not in ("arch",)]
    nav.flash(state.PRESET_FLASH, "info",
              f"The {views.md(applied['name'])} preset was for {views.md(applied['dataset'])} with "
              f"{views.md(applied['arch'])}; with another {what} its values went back to what they were"
              + (": " + ", ".join(map(views.md, undone)) if undone else "") + ". Pick a preset again to apply one.")


# ---- Launch and Clone ---------------------------------------------------------------------------
def launch(cls: type = TrainConfig) -> None:
    """Create the run from the form and start it; refuse while the form has errors."""
    config, errors, name = current(cls)
    if errors:
        arch = _archs().get(config.arch) if isinstance(config.arch, str) else None
        nav.flash(state.FLASH, "error", "Not launched: fix " + ", ".join(views.error_labels(errors, arch)) + " first.")
        return
    try:
        path = store.create_run(config, name or views.default_name(config), by=signin.me())
    except ConfigError as exc:
        nav.flash(state.FLASH, "error", "Not launched: " + "; ".join(f"{views.md(k)}: {views.md(v)}"
                                                                for k, v in exc.errors.items()))
        return
    except (ValueError, OSError) as exc:   # people.OverLimit too: a learner's limits, with the numbers
        nav.flash(state.FLASH, "error", f"Not launched: {views.md(exc)}")
        return
    try:
        jobs.launch(path, processes=int(st.session_state.get(state.PROCESSES) or 1), by=signin.me())
    except (jobs.QueueFull, people.OverLimit) as exc:   # the line, or a learner's share, is full: nothing
        store.delete_run(path, by=signin.me())           # started, and the run made for it goes
        nav.flash(state.FLASH, "error", f"Not launched: {views.md(str(exc).rstrip('.'))}.")
        return
    except (ValueError, OSError) as exc:   # never leave a run that looks queued but has no process
        store.update_run(path, status="failed", error=f"could not start the training process: {exc}")
        nav.flash(state.FLASH, "error", f"Run {path.name} could not start: {views.md(exc)}")
        return
    actions.watch(path.name)
    actions.open_tab("Live")
    nav.flash(state.FLASH, "success", f"Launched run {path.name}.")


def clone(run_id: str | None, cls: type = TrainConfig) -> None:
    """Fill the form with a saved run's settings (DIGITS' 'Clone job')."""
    if not run_id:
        return
    try:
        record = store.read_run(store.run_dir(run_id))
        config, dropped = views.clone_config(record, cls)
    except (ValueError, TypeError) as exc:
        nav.flash(state.FLASH, "error", f"Could not clone {run_id}: {views.md(exc)}")
        return
    given = record.config.get("arch_params")
    odd = [f"arch_params: {given!r:.60} is not an object of parameter values; the defaults are used"] \
        if given is not None and not isinstance(given, dict) else []
    notes = odd + load_config(config) + [f"{d}: a field unknown to this version" for d in dropped]
    nav.flash(state.CLONE_FLASH, "warning" if notes else "success", f"Form filled from run {run_id}."
              + (" Not carried over: " + "; ".join(map(views.md, notes)) + "." if notes else ""))
    actions.open_tab("New run")


def launch_bar(errors: dict, where: str, cls: type = TrainConfig) -> None:
    """The Launch button and, beside it, what keeps it off or how the training slots stand. Drawn above
    the form (a keyboard reaches it in a few Tab presses) and again below it (`where`: top, bottom)."""
    launch_col, note = st.columns([1, 3], vertical_alignment="center")
    launch_col.button("Launch", key=state.LAUNCH if where == "top" else state.LAUNCH_BOTTOM, type="primary",
                      icon=":material/rocket_launch:", disabled=bool(errors), on_click=launch, args=(cls,),
                      width="stretch")
    if errors:
        arch = _archs().get(st.session_state[field("arch")])
        which = "this setting is" if len(errors) == 1 else f"these {len(errors)} settings are"
        note.warning(f"Launch is off until {which} fixed: {', '.join(views.error_labels(errors, arch))}.",
                     icon=":material/block:")
    elif where == "top" and (active := jobs.active_runs()):     # the queue's workings once there is one
        note.caption(views.queue_note(active, jobs.slots_for(signin.me())))


def processes_input(where) -> None:
    """How many processes train the run together (torchrun on this machine, DistributedDataParallel)."""
    most = jobs.max_processes()
    where.number_input("Processes", 1, max(most, 1), 1, step=1, key=state.PROCESSES, help=(
        f"1: one process, as usual. N: the run is launched through torchrun on this machine and N processes "
        f"train it together, each on its part of every batch (the batch size must divide by N). At most {most} "
        f"here (one per {'GPU' if jobs._has_cuda() else 'CPU core'}). On 2 CPU cores one process with 2 threads "
        "is about as fast: this is for learning how training is spread, and for GPUs."))


def layer_table(config: TrainConfig, errors: dict) -> None:
    """The model's layers for the chosen dataset, before anything trains. Knobs with a bad value are shown
    at their defaults (dropout, say, changes no shape), and the table says so."""
    if {"arch", "dataset"} & set(errors):
        st.info("Fix the dataset or architecture above to see the model's layers.")
        return
    arch = _archs()[config.arch]
    bad = [p for p in arch.params if f"arch_params.{p.name}" in errors]
    params = {k: v for k, v in config.arch_params.items() if k not in {p.name for p in bad}}
    try:
        table, total = _layers(config.dataset, config.arch, tuple(sorted(params.items())))
    except ValueError as exc:
        st.error(views.md(exc))
        return
    with st.container():
        if bad:
            st.caption("Shown with the default of " + ", ".join(f"{p.title} ({p.default})" for p in bad)
                       + ": the value given is not valid.")
        st.markdown(f"For a {views.input_text(config.dataset)} input: **{total:,}** parameters in all.")
        st.dataframe(table, hide_index=True, width="stretch", height=min(35 * (len(table) + 1) + 4, 640),
                     column_config={"parameters": st.column_config.NumberColumn(format="localized")})
    st.caption(
        "**Output shape** is channels × height × width after the layer, for one image. A conv with kernel K, "
        "padding P and stride S maps a side H to (H + 2P − K) / S + 1; a 2×2 max-pool halves it.  \n"
        "**Parameters** are the layer's weights and biases: a conv has out × in × K × K weights plus out "
        "biases; a linear layer in × out weights plus out biases. Pooling, activations, dropout and "
        "flatten have none.  \nThe table updates as you change the dataset, the model or its knobs.")


@st.cache_data(show_spinner=False, max_entries=64)
def _layers(dataset: str, arch: str, params: tuple):
    from cnn_core.nets import architectures

    with architectures.on_meta():      # shapes and counts only: the server allocates nothing of the model
        return views.layer_frame(dataset, arch, dict(params))


def clone_box(cls: type = TrainConfig) -> None:
    """Pick a saved run and copy its settings into the form (DIGITS' 'Clone job')."""
    saved = {r.id: r for r in owners.visible(store.readable(store.list_runs()), signin.me())}
    with st.expander("Clone settings from a saved run", icon=":material/content_copy:"):
        a, b = st.columns([3, 1], vertical_alignment="bottom")
        pick = a.selectbox("Run", list(saved), key=state.CLONE, index=None, placeholder="choose a run",
                           format_func=lambda i: f"{views.run_label(saved[i])} — {saved[i].arch} "
                                                 f"on {saved[i].dataset}")
        b.button("Fill the form", key=state.CLONE_BTN, disabled=pick is None, on_click=clone,
                 args=(pick, cls), width="stretch")
        nav.show_flash(state.CLONE_FLASH)
