"""Learn: short lessons that follow the tutorials this product grew from, in order. Each asks a question,
runs the experiments that answer it as ordinary runs, and shows their result beside the learner's guess and
the tutorial's own figure. Progress is the runs folder's: a lesson whose runs ended is done."""
import streamlit as st

from cnn_core.runs import owners, store
from cnn_core.train import jobs, lessons
from ui import nav, signin, views
from ui.learn import measures, state


def _yours(records: list) -> list:
    """The runs a lesson's progress is read from: in class mode the person's own (a classmate's run of the
    same lesson does not answer it for them); outside it, every run."""
    me = signin.me()
    return owners.visible(records, me) if me is None else owners.mine(records, me)


def _launch(lesson_id: str) -> None:
    """Each experiment of the lesson as a run, launched into the queue (they train one after another)."""
    lesson, me = lessons.get(lesson_id), signin.me()
    st.session_state[state.OPEN] = lesson_id
    try:
        made = lessons.launch(lesson, by=me)     # in class mode theirs, checked against their limits together
    except (ValueError, OSError, jobs.QueueFull) as exc:
        nav.flash(state.FLASH, "error", f"Not all of them started: {views.md(exc)}")
        return
    nav.flash(state.FLASH, "success", f"Started {views.count(len(made), 'run')}: " + (
        "the result appears here when it finishes." if len(made) == 1 else
        "they train one after another; the results appear here as they finish."))


def _results_live(lesson_id: str) -> None:
    """While a lesson's runs are in progress (a fragment, every 2 s): their rows as they go; once they have
    all ended, the whole page again (its progress, the lesson's tick, the answer)."""
    lesson = lessons.get(lesson_id)
    runs = lessons.latest_runs(lesson, _yours(store.readable(store.list_runs())))
    if lessons.ended(runs):
        st.rerun(scope="app")
    _results(lesson, runs)


def _results(lesson: lessons.Lesson, runs: dict[str, store.Run | None]) -> None:
    """The lesson's runs as they go and, once all ended, the answer beside the guess."""
    if all(r is None for r in runs.values()):
        return
    rows = [{"experiment": label, "status": r.effective_status if r else "not run",
             "test accuracy": r.summary.get("test_acc") if r else None,
             "what happened": (r.error or "").split(".")[0] if r else ""} for label, r in runs.items()]
    st.dataframe(rows, hide_index=True, column_config={
        "test accuracy": st.column_config.NumberColumn(format="percent")})
    if not lessons.ended(runs):
        return
    accs = lessons.accuracies(runs)
    guess = st.session_state.get(state.guess(lesson.id))
    value, problem = measures.measured(lesson, runs)
    why = lesson.verdict(accs, value) if problem is None else problem
    said = (f"You answered **{views.md(guess)}**: " + ("right." if guess == lesson.answer else "not this time.")
            if guess else "")
    found = "" if value is None else f"Measured on this run: {views.md(measures.figure_text(lesson, value))}. "
    (st.success if why is None else st.warning)(
        f"{said} The answer: **{views.md(lesson.answer)}**. {found}"
        + ("The runs bear it out." if why is None else f"These runs do not quite: {views.md(why)}."))
    st.caption(f"**The tutorial:** {views.md(lesson.tutorial)}  \n**Try this:** {views.md(lesson.try_this)}")
    best = max((k for k in accs if accs[k] is not None), key=accs.get, default=lesson.answer)
    a, b = st.columns(2)
    with a:
        tab = measures.TAB.get(lesson.measure.kind) if lesson.measure else None
        nav.link("inspect", f"Inspect {views.md(best)}" + (f": its {tab} tab" if tab else ""), run=runs[best].id)
    with b:
        if len(runs) > 1:
            nav.link("compare", "Compare these runs", runs=[r.id for r in runs.values()])
        elif lesson.measure is not None and lesson.measure.kind == "fooled":
            nav.link("draw", "Draw a digit for it to misread", run=runs[best].id)


st.title("Learn")
st.caption("Short lessons that follow the PyTorch tutorials this tool grew from, in their order. Each asks a "
           "question: answer it, then run its experiments (each well under a minute on a laptop's CPU) and see "
           "the result beside your answer and the tutorial's own figure.")
nav.show_flash(state.FLASH)
records = _yours(store.readable(store.list_runs()))
all_runs = {lesson.id: lessons.latest_runs(lesson, records) for lesson in lessons.LESSONS}
finished = [i for i, lesson in enumerate(lessons.LESSONS) if lessons.ended(all_runs[lesson.id])]
st.progress(len(finished) / len(lessons.LESSONS),
            text=f"{len(finished)} of {views.count(len(lessons.LESSONS), 'lesson')} done")
first_open = next((i for i in range(len(lessons.LESSONS)) if i not in finished), None)
for i, lesson in enumerate(lessons.LESSONS):
    runs = all_runs[lesson.id]
    opened = i == first_open or lesson.id == st.session_state.get(state.OPEN)
    with st.expander(f"{i + 1}. {lesson.title}" + ("  ✓" if i in finished else ""), expanded=opened):
        st.markdown(lesson.text)
        st.markdown(f"**{lesson.question}**")
        guess = st.radio("Your answer", lesson.choices, index=None, key=state.guess(lesson.id), horizontal=True)
        active = any(r is not None and r.effective_status in store.ACTIVE for r in runs.values())
        st.button("Run the experiments" if not any(runs.values()) else "Run them again", key=state.run(lesson.id),
                  type="primary", icon=":material/play_arrow:", disabled=guess is None or active,
                  on_click=_launch, args=(lesson.id,),
                  help="Answer first: then the result is there to check your answer against." if guess is None
                  else ", ".join(e.label for e in lesson.experiments) + ", each an ordinary run.")
        if active:       # re-read while they train; otherwise drawn from the page's one read of the runs folder
            st.fragment(_results_live, run_every=2)(lesson.id)
        else:
            _results(lesson, runs)
