"""The training engine in the shared layer: `training.engine.train(training_config(...))` for every kind of
classifier.

    engine.py      train(cfg) -> TrainResult; training_config(**settings); the run's start
    run.py         TrainingRun (the run's state in one object), datasets, checkpoint fields, evaluation files
    loop.py        one network: loaders, loss, epochs, validation, best checkpoints, resume
    ensemble.py    deep ensembles: members one after another, then averaged
    trees.py       gradient-boosted trees: one fit, out-of-fold predictions
    evaluation.py  drift references and decision weights, the test split, start-up previews
    recipes.py     named starting points (the guide's models): the dashboard's Train menu and demo.py
    retrain.py     the review loop's retrain and the comparison of two models on the same held-out windows
The kinds of classifier and their contract are in classifiers.py (which imports the parts above; the engine
imports classifiers, so this package imports nothing itself).
"""
