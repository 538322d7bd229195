"""Review logic without a display: bouts, edits, undo/redo, autosave, export that preprocessing reads, agreement."""
import numpy as np
import pandas as pd
import pytest

from utils.errors import UserError
from utils.readers.labels import load_frame_labels
from utils.results.review import ReviewSession

CLASSES = ["groom", "rest", "walk"]


def session():
    predicted = ["walk"] * 10 + ["rest"] * 5 + ["unknown"] * 3 + ["groom"] * 12
    confidence = np.r_[np.full(10, 0.9), np.full(5, 0.4), np.full(3, 0.2), np.full(12, 0.8)]
    return ReviewSession(CLASSES, predicted, confidence)


def layout(s):
    return [(b.start, b.end, b.label) for b in s.bouts()]


def test_bouts_come_from_the_predictions_with_their_confidence():
    s = session()
    assert layout(s) == [(0, 9, "walk"), (10, 14, "rest"), (15, 17, None), (18, 29, "groom")]
    assert [round(b.confidence, 2) for b in s.bouts()] == [0.9, 0.4, 0.2, 0.8]
    assert min(s.bouts(), key=lambda b: b.confidence).label is None  # least confident first: the unknown run
    assert s.bout_at(12).label == "rest" and not any(b.reviewed for b in s.bouts())


def test_every_edit_and_its_undo_redo():
    s = session()
    s.relabel(s.bout_at(12), "walk")  # rest -> walk joins the first bout
    assert layout(s)[:2] == [(0, 14, "walk"), (15, 17, None)]
    s.split(5, "groom")
    assert layout(s)[:2] == [(0, 4, "walk"), (5, 14, "groom")]
    s.move_end(s.bout_at(0), 7)  # walk takes frames 5..7 back
    assert layout(s)[:2] == [(0, 7, "walk"), (8, 14, "groom")]
    s.move_start(s.bout_at(20), 16)  # groom grows into the unlabelled run
    assert layout(s)[2:] == [(15, 15, None), (16, 29, "groom")]
    s.delete(s.bout_at(0))
    assert layout(s)[0] == (0, 7, None)
    s.merge_next(s.bout_at(10))  # groom 8..14 and unlabelled 15 -> groom 8..15, then groom 16..29 joins
    assert layout(s) == [(0, 7, None), (8, 29, "groom")]
    states = []
    while True:
        states.append(layout(s))
        if not s.undo():
            break
    assert states[-1] == layout(session())  # undone back to the predictions
    assert len(states) == 7  # 6 edits, merge_next counted as one
    while s.redo():
        pass
    assert layout(s) == states[0]
    s.confirm(s.bout_at(0))
    assert s.bout_at(0).reviewed and not s.redo()  # a new edit clears the redo stack


def test_bad_edits_are_clear_errors():
    s = session()
    with pytest.raises(UserError, match="unknown behaviour 'rear'"):
        s.relabel(s.bout_at(0), "rear")
    with pytest.raises(UserError, match="first of its bout"):
        s.split(10, "walk")
    with pytest.raises(UserError, match="no later groom bout to merge bout 18-29 with"):
        s.merge_next(s.bouts()[-1])


def test_merge_joins_two_bouts_of_one_behaviour_and_relabels_only_the_frames_between():
    s = ReviewSession(CLASSES, ["groom"] * 10 + ["walk"] * 2 + ["groom"] * 8 + ["walk"] * 30)
    s.merge_next(s.bout_at(0))
    assert layout(s) == [(0, 19, "groom"), (20, 49, "walk")]  # the 30 walk frames after are not touched
    assert s.reviewed[:20].all() and not s.reviewed[20:].any()
    with pytest.raises(UserError, match="no later groom bout"):
        s.merge_next(s.bout_at(0))  # the long walk bout is never relabelled by a merge
    assert s.undo() and layout(s) == [(0, 9, "groom"), (10, 11, "walk"), (12, 19, "groom"), (20, 49, "walk")]


def test_autosave_restores_every_edit(tmp_path):
    s = session()
    s.relabel(s.bout_at(12), "groom")
    s.confirm(s.bout_at(0))
    s.save(tmp_path / "v.review.json")
    again = session()
    assert again.restore(tmp_path / "v.review.json")
    assert layout(again) == layout(s) and (again.reviewed == s.reviewed).all()
    other = ReviewSession(CLASSES, ["walk"] * 5)
    with pytest.raises(UserError, match="belongs to another video or model"):
        other.restore(tmp_path / "v.review.json")


def test_export_is_the_per_frame_csv_preprocessing_reads_with_reviewed_frames_only(tmp_path):
    s = session()
    s.relabel(s.bout_at(16), "rest")  # the unknown frames 15-17 become rest, joining the predicted rest 10-14
    s.confirm(s.bout_at(25))
    path = s.export_csv(tmp_path / "v.csv")
    labels = load_frame_labels(path, 30, 30.0)
    # frames 0-14 were never reviewed: the model's guesses, not labels
    assert [labels.label_at(f) for f in range(30)] == [None] * 15 + ["rest"] * 3 + ["groom"] * 12
    s.delete(s.bout_at(25))
    table = pd.read_csv(s.export_csv(tmp_path / "v.csv"))
    assert list(table["frame"]) == [15, 16, 17]  # deleted frames are unlabelled: no rows


def test_agreement_scores_predictions_against_corrections():
    s = session()
    s.relabel(s.bout_at(12), "walk")  # the model said rest on 5 frames that are walk
    s.relabel(s.bout_at(16), "walk")  # and unknown on 3 walk frames
    s.confirm(s.bout_at(25))  # 12 groom frames the model got right
    result = s.agreement()
    assert result["frames"] == 20 and result["total_frames"] == 30  # reviewed frames only, and it says so
    assert result["per_class"]["walk"]["recall"] == 0.0 and result["per_class"]["walk"]["support"] == 8
    assert result["per_class"]["groom"]["f1"] == 1.0 and result["accuracy"] == pytest.approx(12 / 20)


def test_from_frames_csv_takes_classes_from_the_top_k_columns(tmp_path):
    pd.DataFrame({"frame": range(4), "label": ["walk", "walk", "no_window", "rest"], "confidence": [.9, .8, 0, .7],
                  "top1_label": ["walk", "walk", "walk", "rest"], "top2_label": ["rest", "groom", "rest", "walk"]}
                 ).to_csv(tmp_path / "v.frames.csv", index=False)
    s = ReviewSession.from_frames_csv(tmp_path / "v.frames.csv")
    assert s.classes == CLASSES and layout(s) == [(0, 1, "walk"), (2, 2, None), (3, 3, "rest")]


def test_a_behaviour_added_while_reviewing_labels_exports_and_comes_back(tmp_path):
    s = session()
    assert s.add_class("sniff") == len(CLASSES) + 1  # its key: the next number
    with pytest.raises(UserError, match="already a behaviour"):
        s.add_class("sniff")
    with pytest.raises(UserError, match="without commas"):
        s.add_class("a,b")
    s.relabel(s.bout_at(12), "sniff")
    table = pd.read_csv(s.export_csv(tmp_path / "v.csv"))
    assert set(table["behavior"]) == {"sniff"} and list(table["frame"]) == list(range(10, 15))
    s.save(tmp_path / "v.review.json")
    again = session()  # the model's classes only, as a new session starts
    assert again.restore(tmp_path / "v.review.json")
    assert again.classes == CLASSES + ["sniff"] and again.bout_at(12).label == "sniff"


def test_suggested_bouts_put_doubtful_rare_and_unfamiliar_ones_first(tmp_path):
    import suggest_review
    from utils.results.review import suggest_bouts

    def table(labels, top1, top2, unfamiliar=None):
        frame = pd.DataFrame({"frame": range(len(labels)), "label": labels, "top1_prob": top1, "top2_prob": top2})
        return frame.assign(unfamiliar=unfamiliar) if unfamiliar is not None else frame
    sure_walk = table(["walk"] * 10 + ["rest"] * 10, [0.95] * 20, [0.03] * 20)
    doubtful = table(["walk"] * 10 + ["groom"] * 4 + ["no_window"] * 2, [0.5] * 10 + [0.6] * 4 + [0.0] * 2,
                     [0.45] * 10 + [0.3] * 4 + [0.0] * 2)
    queue = suggest_bouts({"a": sure_walk, "b": doubtful})
    # the long doubtful walk teaches most (9.5 doubtful frames); groom: rare (4 of 44 frames) and doubtful, but
    # short (2.8); the sure bouts last; no_window never
    assert list(zip(queue["recording"], queue["label"])) == [("b", "walk"), ("b", "groom"), ("a", "rest"),
                                                            ("a", "walk")]
    assert queue.loc[1, "rarity"] == 1.0 and queue.loc[0, "doubt"] == pytest.approx(0.95)
    assert queue.loc[0, "doubtful_frames"] == pytest.approx(9.5) and (queue["unfamiliar"] == 0).all()
    # the same sure rest bout in a recording unlike the training data (half its frames beyond the drift limit)
    drifted = table(["walk"] * 10 + ["rest"] * 10, [0.95] * 20, [0.03] * 20, [0.5] * 10 + [0.5] * 5 + [3.0] * 5)
    both = suggest_bouts({"a": sure_walk, "c": drifted})
    assert (both.loc[0, "recording"], both.loc[0, "label"], both.loc[0, "unfamiliar"]) == ("c", "rest", 0.5)
    # in rounds: a sure rest bout comes before the second of three doubtful walk bouts
    many = table(["walk"] * 10 + ["groom"] * 5 + ["walk"] * 10 + ["groom"] * 5 + ["walk"] * 10 + ["rest"] * 10,
                 [0.5] * 40 + [0.95] * 10, [0.45] * 40 + [0.03] * 10)
    assert suggest_bouts({"m": many})["label"].tolist() == ["walk", "groom", "rest", "walk", "groom", "walk"]
    sure_walk.to_csv(tmp_path / "a.frames.csv", index=False)
    doubtful.to_csv(tmp_path / "b.frames.csv", index=False)
    saved = suggest_review.main(suggest_review.get_args_parser().parse_args(["--results_dir", str(tmp_path),
                                                                             "--count", "2"]))
    assert len(saved) == 2 and pd.read_csv(tmp_path / "review_queue.csv")["label"].tolist() == ["walk", "groom"]
    # another model says groom where this one is sure of rest: that bout's frames are doubtful, and it rises above
    # the hesitant walk (10 x 0.7 rarity factor against 9.5 x 0.6)
    other = sure_walk.assign(label=["walk"] * 10 + ["groom"] * 10)
    split = suggest_bouts({"a": sure_walk, "b": doubtful}, others=[{"a": other}])
    assert (split.loc[0, "recording"], split.loc[0, "label"], split.loc[0, "disagreement"]) == ("a", "rest", 1.0)
    assert split.loc[0, "doubtful_frames"] == pytest.approx(10.0)
    assert split.set_index(["recording", "label"])["disagreement"].drop(("a", "rest")).eq(0).all()
    (tmp_path / "seed1").mkdir()
    other.to_csv(tmp_path / "seed1" / "a.frames.csv", index=False)
    with_other = suggest_review.main(suggest_review.get_args_parser().parse_args([
        "--results_dir", str(tmp_path), "--other_results", str(tmp_path / "seed1"), "--count", "1",
        "--output", str(tmp_path / "q.csv")]))
    assert with_other.loc[0, "label"] == "rest" and with_other.loc[0, "recording"] == "a.frames.csv"
    with pytest.raises(UserError, match="--other_results .*nowhere: none of the 3 recordings"):
        suggest_review.main(suggest_review.get_args_parser().parse_args([
            "--results_dir", str(tmp_path), "--other_results", str(tmp_path / "nowhere"), "--output",
            str(tmp_path / "q.csv")]))
