"""The layer editor (Train > New run, architecture "Your own layers"): start from a registry model or from
empty; add, remove, reorder and edit layers. One line per layer, a phone's included, live: its output
shape, its parameters and the running total, the output-size formula with its numbers, and how much of
the image one value sees; what does not fit is said in words under it. Each line's edit button opens,
under it, the layer's fields, "Move to position" (any number of places in one go) and Remove. Beside
it, the conv-versus-dense figures for this input. The work is cnn_core.nets.layers'; the list lives in
the form's session state like any architecture knob (state.LAYERS)."""
from __future__ import annotations

import json
import uuid

import streamlit as st

from cnn_core.data.guards import fmt_bytes
from cnn_core.nets import layers as layer_list
from cnn_core.nets.limits import BYTES_PER_VALUE
from ui import views
from ui.train import state


def _layers() -> list[dict]:
    ss = st.session_state
    if not isinstance(ss.get(state.LAYERS), list):
        ss[state.LAYERS] = json.loads(json.dumps(layer_list.DEFAULT))
    items = ss[state.LAYERS]
    if ss.get(state.LE_LAST) != json.dumps(items) or len(ss.get(state.LE_UIDS, [])) != len(items):
        ss[state.LE_UIDS] = [uuid.uuid4().hex[:8] for _ in items]   # set from elsewhere (a clone): fresh widgets
        _keep()
    return items


def _keep() -> None:
    st.session_state[state.LE_LAST] = json.dumps(st.session_state[state.LAYERS])


def _own() -> list[dict]:
    """The session's layer list as a copy of its own, to change. The form's first value is the Param's
    default, layers.DEFAULT itself, which every session shares: a change made in place showed in the next
    session's editor (a test's conv1 with 8 filters in the next test's new browser)."""
    items = json.loads(json.dumps(st.session_state[state.LAYERS]))
    st.session_state[state.LAYERS] = items
    return items


def _set(i: int, field: str, wkey: str) -> None:
    _own()[i][field] = st.session_state[wkey]
    _keep()


def _retype(i: int, wkey: str) -> None:
    _own()[i] = {"type": st.session_state[wkey]}      # its row (and open editor) stay
    _keep()


def _move(i: int, to: int) -> None:
    st.session_state[state.LAYERS] = layer_list.move_layer(_own(), i, to)
    st.session_state[state.LE_UIDS] = layer_list.move_layer(st.session_state[state.LE_UIDS], i, to)
    _keep()


def _move_to(i: int, wkey: str) -> None:
    _move(i, st.session_state[wkey] - 1)


def _remove(i: int) -> None:
    _own().pop(i)
    st.session_state[state.LE_UIDS].pop(i)
    _keep()


# Layers that work on a vector; the others work on feature maps and are added before the flatten.
VECTOR_LAYERS = ("linear", "dropout")


def _add_at(items: list[dict], kind: str) -> int:
    """Where a new layer of `kind` goes: a feature-map layer (conv, pool, batch norm, ...) before the first
    flatten or global pool, where the image still has its height and width; a vector layer at the end."""
    if kind not in VECTOR_LAYERS:
        for i, layer in enumerate(items):
            if layer.get("type") in ("flatten", "globalpool"):
                return i
    return len(items)


def _add() -> None:
    kind, ss = st.session_state[state.LE_ADD_TYPE], st.session_state
    at = _add_at(ss[state.LAYERS], kind)
    _own().insert(at, {"type": kind})
    ss[state.LE_UIDS].insert(at, uuid.uuid4().hex[:8])
    _keep()


def _start_from(input_shape: tuple, classes: int) -> None:
    from cnn_core.nets import architectures

    arch = st.session_state[state.LE_START]
    if arch == "empty":
        st.session_state[state.LAYERS] = [{"type": "flatten"}]
    elif arch == "example":
        st.session_state[state.LAYERS] = json.loads(json.dumps(layer_list.DEFAULT))
    else:
        params = {p.name: st.session_state.get(state.pkey(arch, p.name), p.default)
                  for p in architectures.get_architecture(arch).params}
        try:                            # on the meta device: only its layers are read
            model = architectures.build_model(arch, input_shape, classes, params, meta=True)
        except ValueError:
            model = architectures.build_model(arch, input_shape, classes, meta=True)
        st.session_state[state.LAYERS] = layer_list.from_model(model)
    st.session_state[state.LAYERS_FROM] = arch


def _receptive(step) -> str:
    return "the whole image" if step.receptive is None else f"{step.receptive}×{step.receptive} px"


def _shape(step) -> str:
    return "—" if step.shape is None else " × ".join(map(str, step.shape))


def editor(input_shape: tuple, classes: int, batch_size: int | None = None) -> None:
    """The whole editor for a (C, H, W) input and `classes` outputs; with batch_size, one training batch's
    activations are weighed too."""
    from cnn_core.nets import architectures

    items = _layers()
    starts = {a.id: a.title for a in architectures.ARCHITECTURES.values() if a.id != "custom"}
    st.subheader("Your layers")
    a, c = st.columns([3, 2], vertical_alignment="bottom")
    starts = {"example": "the editor's example (two convs)", **starts, "empty": "empty (a flatten only)"}
    if st.session_state.get(state.LE_START) not in starts:
        st.session_state[state.LE_START] = "example"      # what the list below holds at first
    a.selectbox("Start from", list(starts), key=state.LE_START, format_func=starts.get,
                on_change=_start_from, args=(input_shape, classes),
                help="Picking one puts its layers below at once: a tutorial model's (with its knobs as set on the "
                     "form), the editor's example, or an empty list. Your edits to the list are then replaced.")
    c.download_button("Layers as JSON", json.dumps(items, indent=1), "layers.json", "application/json",
                      key=state.LE_DOWNLOAD, width="stretch", icon=":material/data_object:",
                      help="For the CLI: python -m cnn_core train --layers layers.json")
    why = layer_list.problem(items)
    steps = layer_list.plan(items, input_shape, classes) if why is None else []
    st.caption(f"Input: {' × '.join(map(str, input_shape))}. On each layer's line: its output shape, its "
               "weights and the running total, the size formula with its numbers, and how much of the image one "
               "value sees (the receptive field). :material/edit: changes a layer, moves it to any position or "
               "removes it.")
    if why:
        st.error(views.md(why), icon=":material/error:")   # it quotes the list's values (a cloned run's)
    uids, row = st.session_state[state.LE_UIDS], 0
    with st.container(gap="xsmall"):
        for step in steps:                  # one step per layer, and the ones the editor adds (auto)
            if step.auto:
                _auto(step)
            else:
                _row(row, uids[row], items[row], step, len(items))
                row += 1
        for i in range(row, len(items)):    # no plan: the list itself is wrong (said above)
            _row(i, uids[i], items[i], None, len(items))
    if steps and steps[-1].shape is not None:
        image = layer_list.activation_values(steps, input_shape) * BYTES_PER_VALUE
        batch = f", {fmt_bytes(image * batch_size)} for a batch of {batch_size:,}" if batch_size else ""
        st.markdown(f"**{steps[-1].total:,}** parameters in all. Activations kept for the backward pass: "
                    f"{fmt_bytes(image)} an image{batch}.")
        for why in layer_list.size_problems(steps, input_shape, batch_size):
            st.error(why, icon=":material/error:")
    d, e = st.columns([3, 1], vertical_alignment="bottom")
    d.selectbox("Add a layer", list(layer_list.TYPES), key=state.LE_ADD_TYPE,
                format_func=lambda t: f"{t}: {layer_list.TYPES[t][1]}",
                help="Layers that work on feature maps (conv, pool, batch norm, ...) go in before the flatten, "
                     "where the image still has its height and width; linear and dropout go at the end. Move "
                     "it with the arrows, or to any position from its :material/edit: button.")
    e.button("Add", key=state.LE_ADD, on_click=_add, width="stretch", icon=":material/add:")
    conv_vs_dense(input_shape)


def _auto(step) -> None:
    st.caption(f":material/auto_awesome: **{step.name}** · {views.md(step.text)} → {_shape(step)} · "
               f"{step.params:,} parameters (total {step.total:,})" + (f" · {views.md(step.formula)}" if step.formula
                                                                        else ""), wrap=False)


def _line(i: int, layer: dict, step) -> str:
    """A layer on one line: its name, what it is, its output shape, then (in grey) its parameters, the size
    formula and the receptive field. Cut with an ellipsis where the line is too narrow (a phone); the full
    text shows on hover and in the row's editor."""
    if step is None:
        return f"**layer {i + 1}** · {views.md(layer.get('type'))}"
    if step.problem == layer_list.NOT_REACHED:      # said on its line: the error is the layer above's
        return f"**{step.name}** · {views.md(step.text)} :gray[· {views.md(step.problem)}]"
    line = f"**{step.name}** · {views.md(step.text)} → **{_shape(step)}**"
    return f"{line} :gray[· {views.md(_details(step))}]"


def _details(step) -> str:
    parts = [f"{step.params:,} parameters (total {step.total:,})"]
    if step.formula:
        parts.append(step.formula)
    if step.shape is not None:
        parts.append(f"one value sees {_receptive(step)}")
    return " · ".join(parts)


def _row(i: int, uid: str, layer: dict, step, n: int) -> None:
    """One line per layer (a phone included): its words, up, down and edit. Edit opens the layer's fields,
    its full figures, "Move to position" and Remove under the line, in the page's flow (a popover opened
    under the last lines of a phone's screen left its controls below the screen's edge, and the browser
    gave its never-shown widgets their defaults: conv, out 1, position 1). What does not fit is said under
    its line; the layers after it say "not reached" on theirs."""
    editing = st.session_state.get(state.LE_OPEN) == uid
    with st.container(border=True, key=state.le_row(uid)):
        line = st.container(horizontal=True, vertical_alignment="center", gap="small", wrap=False)
        line.markdown(_line(i, layer, step), wrap=False, width="stretch")
        line.button("", key=state.le_up(uid), icon=":material/arrow_upward:", disabled=i == 0, type="tertiary",
                    on_click=_move, args=(i, i - 1), help="Move up")
        line.button("", key=state.le_down(uid), icon=":material/arrow_downward:", disabled=i == n - 1,
                    type="tertiary", on_click=_move, args=(i, i + 1), help="Move down")
        line.button("", key=state.le_edit(uid), icon=":material/edit:", on_click=_toggle, args=(uid,),
                    type="primary" if editing else "secondary",
                    help="Close the editor" if editing else "Edit this layer, move it to any position, or remove it")
        if step is not None and step.problem and step.problem != layer_list.NOT_REACHED:
            st.error(step.problem, icon=":material/error:")
        if editing:
            _edit(i, uid, layer, step, n)


def _toggle(uid: str) -> None:
    """Open the editor of row `uid` (one at a time), or close it."""
    ss = st.session_state
    ss[state.LE_OPEN] = None if ss.get(state.LE_OPEN) == uid else uid


def _edit(i: int, uid: str, layer: dict, step, n: int) -> None:
    """A row's editor: the full figures, type and fields (they wrap at fixed widths), and the position and
    remove controls."""
    kind = layer.get("type")
    fields = layer_list.TYPES.get(kind, ((), ""))[0]
    if step is not None:
        st.caption(f"→ **{_shape(step)}** · {views.md(_details(step))}")
    row = st.container(horizontal=True, vertical_alignment="bottom", gap="small")
    tkey = state.le_type(uid)
    if st.session_state.get(tkey) != kind and kind in layer_list.TYPES:
        st.session_state[tkey] = kind
    row.selectbox("type", list(layer_list.TYPES), key=tkey, on_change=_retype, args=(i, tkey), width=160,
                  help=layer_list.TYPES.get(kind, ((), ""))[1])
    for spec in fields:
        wkey = state.le_field(uid, kind, spec.name)
        value = layer.get(spec.name, layer_list.full(layer)[spec.name])
        if st.session_state.get(wkey) != value:
            st.session_state[wkey] = value
        common = dict(key=wkey, on_change=_set, args=(i, spec.name, wkey), help=spec.help)
        if spec.kind == "int":
            row.number_input(spec.name, min_value=int(spec.low), max_value=int(spec.high), step=1, width=110,
                             **common)
        elif spec.kind == "float":
            row.number_input(spec.name, min_value=0.0, max_value=0.95, step=0.05, width=110, **common)
        elif spec.kind == "bool":
            row.checkbox(spec.name, **common)
        else:
            row.selectbox(spec.name, list(spec.options()), width=110, **common)
    moves = st.container(horizontal=True, vertical_alignment="bottom", gap="small")
    pkey = state.le_pos(uid)
    if st.session_state.get(pkey) != i + 1:
        st.session_state[pkey] = i + 1
    moves.selectbox("Move to position", list(range(1, n + 1)), key=pkey, on_change=_move_to,
                    args=(i, pkey), width=160, help="Where this layer goes in the list (1 is the first, next to the "
                                                    "input); the layers between shift by one.")
    moves.button("Remove", key=state.le_del(uid), icon=":material/close:", on_click=_remove, args=(i,),
                 disabled=n == 1)


def conv_vs_dense(input_shape: tuple) -> None:
    """The tutorial's comparison with the true figures for this input."""
    f = layer_list.conv_vs_dense(input_shape)
    with st.expander("Why convolutions: a conv against a dense layer, with the true figures",
                     icon=":material/calculate:"):
        st.markdown(
            f"For this {' × '.join(map(str, input_shape))} input, 16 outputs each:\n\n"
            f"- a **3×3 conv** with 16 filters has {f['conv_formula']} weights (plus 16 biases);\n"
            f"- a **dense layer** to 16 units has {f['dense_formula']} weights (plus 16 biases): "
            f"**{f['ratio']:,.0f}×** as many.\n\n"
            "The tutorial writes 16·3·3·3 = 1728 for the conv and 3·32·32 = 9216 for the dense layer; both are "
            "wrong (16·3·3·3 is 432, and the dense layer has 3·32·32 weights per unit, 49,152 for 16 units on "
            "a 3×32×32 image). The conv's weights do not grow with the image: the same 3×3 filters slide over "
            "every position.")
