"""The dashboard (behaviorscope_gui.py is its entry point), one module per family of tabs:

    app.py       the window: tabs, menu, the one running job polled every POLL_MS
    stages.py    Preprocess, Train, Inference, Evaluate, Track and Detector: a form from the schema, Run/Cancel,
                 log, progress and results (StageTab and its subclasses)
    review.py    Review: play a classified video, correct its bouts, export labels, retrain
    jobs.py      JobView: a running stage script shown in a tab (log, progress bar, status, the end)
    widgets.py   forms bound to the schema, tables, images, dialogs
    state.py     recent files and configs, kept between sessions

Widgets only collect values and show results: what a stage does is its script's, what a retrain trains on is
training.retrain's.
"""
