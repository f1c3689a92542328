"""The Train page's form: dataset, architecture and its knobs, hyperparameters; each widget with its help
and, under it, what TrainConfig.validate() says is wrong with it. Launch refuses until nothing is."""
from __future__ import annotations

import streamlit as st

from ui import views
from cnn_core.config import AUGMENT_MODES, OPTIMIZERS, SCHEDULES, TrainConfig, field_help, field_label

KEEP = "session"    # widget values survive leaving the page and coming back


def key(name: str) -> str:
    return f"train.{name}"


def pkey(arch: str, name: str) -> str:
    return f"train.p.{arch}.{name}"


def _archs():
    from cnn_core import models  # torch

    return models.ARCHITECTURES


def _datasets():
    from cnn_core import data  # torch

    return data.DATASETS


def load_config(config: TrainConfig) -> list[str]:
    """Fill the form with `config` (before the widgets draw: a callback or the page top).
    A value its widget cannot hold (text for a number, an unknown choice: a hand-edited or foreign run.json)
    is not taken: the field keeps its value and the returned notes name it. Returns those notes."""
    notes, archs = [], _archs()
    for name, value in views.form_values(config).items():
        problem = views.form_value_problem(name, value)
        if problem:
            notes.append(f"{name}: {views.shown(value)} {problem}; kept {st.session_state.get(key(name))!r}")
        else:
            st.session_state[key(name)] = value
    arch = archs[st.session_state[key("arch")]]
    given = config.arch_params if config.arch == arch.id and isinstance(config.arch_params, dict) else {}
    for p in arch.params:
        value = views.param_widget_value(p.kind, given.get(p.name, p.default))
        if problem := views.param_value_problem(p, value):
            notes.append(f"arch_params.{p.name}: {views.shown(value)} {problem}; the default {p.default!r} is used")
            value = views.param_widget_value(p.kind, p.default)
        st.session_state[pkey(arch.id, p.name)] = value
    known = {p.name for p in arch.params}
    notes += [f"arch_params.{k}: unknown to {arch.id}; left out" for k in given if k not in known]
    st.session_state[key("name")] = ""
    return notes


def init_state() -> None:
    """Defaults for every widget, once per session."""
    if st.session_state.get("train.ready"):
        return
    for arch in _archs().values():
        for p in arch.params:
            st.session_state[pkey(arch.id, p.name)] = views.param_widget_value(p.kind, p.default)
    st.session_state[key("arch")] = TrainConfig().arch
    load_config(TrainConfig())
    st.session_state["train.ready"] = True


def current() -> tuple[TrainConfig, dict[str, str], str]:
    """The config the form holds now, its errors by field, and the run name."""
    ss = st.session_state
    values = {f: ss.get(key(f)) for f in views.FORM_FIELDS}
    arch = _archs()[values["arch"]]
    params = {p.name: ss.get(pkey(arch.id, p.name), p.default) for p in arch.params}
    config = views.config_from_form(values, params)
    errors = config.validate()
    name = (ss.get(key("name")) or "").strip()
    if len(name) > 120:
        errors["name"] = f"a run name has at most 120 characters, got {len(name)}"
    return config, errors, name


def _error(errors: dict, name: str) -> None:
    if name in errors:
        st.error(errors[name], icon=":material/error:")


def _number(errors, name, step, fmt=None, **kw) -> None:
    st.number_input(field_label(name), key=key(name), step=step, format=fmt, help=field_help(name),
                    persist_state=KEEP, **kw)
    _error(errors, name)


def _select(errors, name, options, **kw) -> None:
    st.selectbox(field_label(name), options, key=key(name), help=field_help(name), persist_state=KEEP, **kw)
    _error(errors, name)


def _check(errors, name, **kw) -> None:
    st.checkbox(field_label(name), key=key(name), help=field_help(name), persist_state=KEEP, **kw)
    _error(errors, name)


def _param_widget(arch_id: str, p, errors: dict) -> None:
    k, tip = pkey(arch_id, p.name), f"{p.help} (`{p.name}`)"
    if p.kind in ("int", "float"):
        tip = f"{p.help} Allowed: {p.low:g} to {p.high:g}; default {p.default}. (`{p.name}`)"
        st.number_input(p.title, key=k, step=1 if p.kind == "int" else 0.05, help=tip, persist_state=KEEP,
                        format=None if p.kind == "int" else "%.2f")
    elif p.kind == "bool":
        st.checkbox(p.title, key=k, help=tip, persist_state=KEEP)
    else:
        st.selectbox(p.title, p.choices, key=k, help=tip, persist_state=KEEP)
    _error(errors, f"arch_params.{p.name}")


def choice_section(errors: dict) -> None:
    """Dataset and architecture side by side (wide enough for their names), and what the architecture
    teaches and fixes."""
    datasets, archs = _datasets(), _archs()
    a, b = st.columns(2, gap="large")
    with a:
        _select(errors, "dataset", list(datasets), format_func=lambda d: datasets[d].title)
    with b:
        _select(errors, "arch", list(archs), format_func=lambda a: archs[a].title)
    arch = archs[st.session_state[key("arch")]]
    st.markdown(f"**{arch.title}.** {arch.teaches}")
    if arch.fixes:
        st.caption(f":material/build: What the tutorial got wrong, fixed here: {arch.fixes}")


def model_section(errors: dict) -> None:
    """The architecture's own knobs and the validation size."""
    arch = _archs()[st.session_state[key("arch")]]
    cols = st.columns(2)
    for i, p in enumerate(arch.params):
        with cols[i % 2]:
            _param_widget(arch.id, p, errors)
    _number(errors, "val_size", 1, placeholder="dataset default")


def optimizer_section(errors: dict) -> None:
    sgd = st.session_state[key("optimizer")] == "sgd"
    step = st.session_state[key("schedule")] == "step"
    _select(errors, "optimizer", OPTIMIZERS)
    _number(errors, "lr", 0.001, "%g")
    a, b = st.columns([3, 2], vertical_alignment="bottom")
    with a:
        _number(errors, "momentum", 0.05, "%.2f", disabled=not sgd)
    with b:
        _check(errors, "nesterov", disabled=not sgd)
    _number(errors, "weight_decay", 0.0001, "%g")
    _select(errors, "schedule", SCHEDULES)
    a, b = st.columns(2)
    with a:
        _number(errors, "step_size", 1, disabled=not step)
    with b:
        _number(errors, "gamma", 0.05, "%g", disabled=not step)


def training_section(errors: dict, devices: list[str]) -> None:
    a, b = st.columns(2)
    with a:
        _number(errors, "batch_size", 1)
    with b:
        _number(errors, "epochs", 1)
    _select(errors, "augment", AUGMENT_MODES)
    _number(errors, "label_smoothing", 0.05, "%.2f")
    a, b = st.columns(2)
    with a:
        _number(errors, "seed", 1)
    with b:
        _select(errors, "device", devices)
    _check(errors, "amp")
    st.text_input("Run name (optional)", key=key("name"), max_chars=120, persist_state=KEEP,
                  placeholder="default: model, data, optimizer, lr, batch, epochs",
                  help="A name to find this run by in lists; empty = a name made of its main settings.")
    _error(errors, "name")
    with st.expander("Advanced"):
        _number(errors, "log_every", 1)
        _number(errors, "dry_run_batches", 1, placeholder="0 = every batch")


def launch_bar(errors: dict, where: str) -> None:
    """The Launch button and, beside it, what keeps it off or how the training slots stand. Drawn above
    the form (a keyboard reaches it in a few Tab presses) and again below it (`where`: top, bottom)."""
    from cnn_core import jobs

    from ui import actions

    launch, note = st.columns([1, 3], vertical_alignment="center")
    launch.button("Launch", key="train.launch" if where == "top" else "train.launch_bottom", type="primary",
                  icon=":material/rocket_launch:", disabled=bool(errors), on_click=actions.launch, width="stretch")
    if errors:
        arch = _archs().get(st.session_state[key("arch")])
        which = "this setting is" if len(errors) == 1 else f"these {len(errors)} settings are"
        note.warning(f"Launch is off until {which} fixed: {', '.join(views.error_labels(errors, arch))}.",
                     icon=":material/block:")
    elif where == "top":
        note.caption(views.queue_note(jobs.active_runs(), jobs.max_jobs()))


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
        st.error(str(exc))
        return
    table_col, notes = st.columns([3, 2], gap="large")
    with table_col:
        if bad:
            st.caption("Shown with the default of " + ", ".join(f"{p.title} ({p.default})" for p in bad)
                       + ": the value given is not valid.")
        st.markdown(f"For a {views.input_text(config.dataset)} input: **{total:,}** parameters in all.")
        st.dataframe(table, hide_index=True, width="stretch", height=min(35 * (len(table) + 1) + 4, 640),
                     column_config={"parameters": st.column_config.NumberColumn(format="localized")})
    notes.caption(
        "**Output shape** is channels × height × width after the layer, for one image. A conv with kernel K, "
        "padding P and stride S maps a side H to (H + 2P − K) / S + 1; a 2×2 max-pool halves it.  \n"
        "**Parameters** are the layer's weights and biases: a conv has out × in × K × K weights plus out "
        "biases; a linear layer in × out weights plus out biases. Pooling, activations, dropout and "
        "flatten have none.  \nThe table updates as you change the dataset, the model or its knobs.")


@st.cache_data(show_spinner=False, max_entries=64)
def _layers(dataset: str, arch: str, params: tuple):
    return views.layer_frame(dataset, arch, dict(params))


def clone_box() -> None:
    """Pick a saved run and copy its settings into the form (DIGITS' 'Clone job')."""
    from cnn_core import runs

    from ui import actions

    saved = {r["id"]: r for r in runs.list_runs() if r.get("effective_status") != "corrupt"}
    with st.expander("Clone settings from a saved run", icon=":material/content_copy:"):
        a, b = st.columns([3, 1], vertical_alignment="bottom")
        pick = a.selectbox("Run", list(saved), key="train.clone", index=None, placeholder="choose a run",
                           format_func=lambda i: f"{views.run_label(saved[i])} — {saved[i].get('arch')} "
                                                 f"on {saved[i].get('dataset')}")
        b.button("Fill the form", key="train.clone_btn", disabled=pick is None, on_click=actions.clone,
                 args=(pick,), width="stretch")
        if note := st.session_state.pop("train.clone_note", None):
            kind, text = note if isinstance(note, tuple) else ("success", note)
            getattr(st, kind)(text)
