"""cnn_core.analysis.inspection and cnn_core.analysis.snapshots against references: saved weights, a manual forward pass, manual Grad-CAM, load_splits,
the engine's own evaluation; on runs trained by the real engine on the small generated data."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnn_core import recipe
from cnn_core.analysis import attribution, inspection, predict, snapshots
from cnn_core.config import TrainConfig
from cnn_core.data import catalog
from cnn_core.nets.architectures import build_model
from cnn_core.runs import checkpoints, store
from cnn_core.train import engine, gradients, trainer
from ui.figures import images as plots

FAST = dict(dataset="mnist", val_size=100, epochs=2, batch_size=32, lr=0.05, seed=0)
ARCHS = ["lenet", "simple-cnn", "deep-cnn", "cifar-net", "res-net-small", "res-net-deep"]


@pytest.fixture(scope="module")
def trained(small_data_dir, tmp_path_factory) -> dict:
    """Runs trained once for the module: lenet on mnist (2 epochs) and cifar-net on cifar2 (1 epoch)."""
    root = tmp_path_factory.mktemp("inspect-runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNN_DATA_DIR", str(small_data_dir))
        mp.setenv("CNN_OFFLINE", "1")
        out = {}
        for name, cfg in {"lenet": dict(arch="lenet"),
                          "cifar": dict(dataset="cifar2", arch="cifar-net", val_size=20, epochs=1, batch_size=16)
                          }.items():
            path = store.create_run(TrainConfig(**{**FAST, **cfg}), runs_dir=root)
            record = engine.run_training(path)
            assert record.status == "completed", record.error
            out[name] = path
    return out


def _weights(path, key: str) -> snapshots.Weights:
    return next(w for w in snapshots.weights_choices(path) if w.key == key)


def _image(shape=(1, 28, 28), seed=0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _model(arch: str, dataset: str = "mnist", seed: int = 0) -> nn.Module:
    info = catalog.get_info(dataset)
    torch.manual_seed(seed)
    params = {"n_blocks": 2} if arch == "res-net-deep" else {}
    return build_model(arch, info.input_shape, len(info.classes), params).eval()


# ---- weights by epoch ---------------------------------------------------------------------------
def test_weights_choices_list_snapshots_then_best(trained):
    """A finished 2-epoch run offers epochs 0, 1, 2 and best, labelled with the best epoch."""
    choices = snapshots.weights_choices(trained["lenet"])
    assert [w.key for w in choices] == ["epoch-000", "epoch-001", "epoch-002", "best"]
    best_epoch = store.read_run(trained["lenet"]).summary["best_epoch"]
    assert choices[-1].label == f"best (epoch {best_epoch})"
    assert snapshots.snapshot_note(trained["lenet"]) is None


@pytest.mark.parametrize("key", ["epoch-000", "epoch-002", "best"])
def test_filters_equal_saved_weights(trained, key):
    """Every conv layer's filters are exactly the weights saved in that file."""
    w = _weights(trained["lenet"], key)
    model, _ = snapshots.load_weights(w)
    saved = torch.load(w.file, weights_only=True)["model"]
    filters = inspection.conv_filters(model)
    assert [name for name, _ in filters] == ["features.conv1", "features.conv2"]
    for name, weight in filters:
        np.testing.assert_array_equal(weight, saved[f"{name}.weight"].numpy())


def test_training_changed_the_filters(trained):
    """Epoch 0 (before training) and epoch 2 hold different first-layer filters."""
    before = inspection.conv_filters(snapshots.load_weights(_weights(trained["lenet"], "epoch-000"))[0])[0][1]
    after = inspection.conv_filters(snapshots.load_weights(_weights(trained["lenet"], "epoch-002"))[0])[0][1]
    assert not np.allclose(before, after)


def test_no_snapshots_says_why(monkeypatch, runs_dir):
    """A run over the snapshot cap has none, offers best and latest, and the note names the cap."""
    monkeypatch.setattr(trainer, "SNAPSHOT_CAP_BYTES", 1000)
    path = store.create_run(TrainConfig(**{**FAST, "arch": "simple-cnn", "epochs": 1}))
    engine.run_training(path)
    assert snapshots.snapshot_epochs(path) == []
    assert [w.key for w in snapshots.weights_choices(path)] == ["best", "latest"]
    assert "cap" in snapshots.snapshot_note(path)


def test_corrupt_weights_raise_checkpoint_error(trained, tmp_path):
    """An empty weights file is a CheckpointError with a message, not a crash."""
    bad = tmp_path / "best.pt"
    bad.write_bytes(b"")
    with pytest.raises(checkpoints.CheckpointError, match="empty"):
        snapshots.load_weights(snapshots.Weights("best", "best", bad, None))


# ---- test set, confusion, mistakes ----------------------------------------------------------------
def test_test_set_normalized_like_load_splits(trained):
    """The test images normalized with the checkpoint's mean/std equal load_splits with the run's config."""
    model, meta = snapshots.load_weights(_weights(trained["lenet"], "best"))
    test = inspection.load_test_set("mnist")
    splits = catalog.load_splits("mnist", FAST["val_size"], seed=FAST["seed"])
    torch.testing.assert_close(test.x(slice(None), meta), splits.test_x, rtol=0, atol=0)
    assert torch.equal(test.y, splits.test_y)


@pytest.mark.parametrize("key", ["epoch-000", "best"])
def test_confusion_matrix_against_manual_count(trained, key):
    """Rows sum to the class counts; the trace equals correct predictions of a plain forward pass."""
    model, meta = snapshots.load_weights(_weights(trained["lenet"], key))
    test = inspection.load_test_set("mnist")
    preds = inspection.predict_test(model, test, meta)
    cm = inspection.confusion_matrix(preds.y, preds.pred, 10)
    np.testing.assert_array_equal(cm.sum(1), np.bincount(test.y.numpy(), minlength=10))
    with torch.no_grad():
        manual = model(test.x(slice(None), meta)).argmax(1)
    assert np.trace(cm) == int((manual == test.y).sum())
    _, acc = recipe.evaluate(model, test.x(slice(None), meta), test.y)
    assert np.trace(cm) / cm.sum() == pytest.approx(acc, abs=1e-12)


def test_best_weights_reproduce_the_reported_test_accuracy(trained):
    """The confusion matrix of best.pt gives the test accuracy the engine wrote into run.json."""
    model, meta = snapshots.load_weights(_weights(trained["lenet"], "best"))
    preds = inspection.predict_test(model, inspection.load_test_set("mnist"), meta)
    assert preds.correct.mean() == pytest.approx(store.read_run(trained["lenet"]).summary["test_acc"])


def test_class_report_on_a_known_matrix():
    """Precision and recall per class from a hand-made matrix; an empty class gives NaN, not an error."""
    cm = np.array([[8, 2, 0], [1, 3, 0], [0, 0, 0]])
    report = inspection.class_report(cm, ["a", "b", "c"])
    assert report["images"].tolist() == [10, 4, 0]
    assert report["accuracy (recall)"][:2].tolist() == pytest.approx([0.8, 0.75])
    assert report["precision"][:2].tolist() == pytest.approx([8 / 9, 3 / 5])
    assert np.isnan(report["accuracy (recall)"][2])
    assert inspection.most_confused(cm) == (0, 1)
    np.testing.assert_allclose(inspection.normalize_rows(cm).sum(1), [1, 1, 0])


def _preds() -> inspection.Predictions:
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.05, 0.95], [0.7, 0.3]], dtype=np.float32)
    return inspection.Predictions(probs, np.array([0, 1, 0, 0, 1]))


def test_mistakes_most_confident_first():
    """Only wrong predictions, ordered by the model's confidence, highest first."""
    preds = _preds()
    assert inspection.mistakes(preds).tolist() == [3, 4, 2]
    assert inspection.cell_indices(preds, 0, 1).tolist() == [3, 2]
    assert inspection.cell_indices(preds, 1, 1).tolist() == [1]


def test_choose_image_modes():
    """By index, by class (n wraps), the n-th mistake, and a seeded random draw."""
    preds = _preds()
    assert inspection.choose_image(preds, "index", n=4) == 4
    assert [inspection.choose_image(preds, "class", n=k, cls=1) for k in range(3)] == [1, 4, 1]
    assert inspection.choose_image(preds, "misclassified", n=1) == 4
    assert inspection.choose_image(preds, "random", seed=7) == inspection.choose_image(preds, "random", seed=7)
    with pytest.raises(ValueError, match="index"):
        inspection.choose_image(preds, "index", n=5)
    right = inspection.Predictions(np.eye(2, dtype=np.float32), np.array([0, 1]))
    with pytest.raises(ValueError, match="no mistakes"):
        inspection.choose_image(right, "misclassified")


# ---- feature maps ---------------------------------------------------------------------------------
def _manual_maps(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Reference: run model.features layer by layer by hand, keeping every output."""
    f, out = model.features, {}
    if isinstance(f, nn.Sequential):          # lenet, simple-cnn, deep-cnn, cifar-net
        for name, layer in f.named_children():
            x = out[name] = layer(x)
    elif hasattr(f, "blocks"):                # res-net-deep: stem, distinct blocks, pool
        for name in ("conv1", "act1", "pool1"):
            x = out[name] = getattr(f, name)(x)
        for i, block in enumerate(f.blocks):
            x = out[f"blocks.{i}"] = block(x)
        out["pool2"] = f.pool2(x)
    else:                                     # res-net-small: the skip joins before pool3
        for name in ("conv1", "act1", "pool1", "conv2", "act2", "pool2", "conv3", "act3"):
            x = out[name] = getattr(f, name)(x)
        out["pool3"] = f.pool3(out["act3"] + out["pool2"])
    return out


@pytest.mark.parametrize("arch", ARCHS)
def test_feature_maps_equal_manual_forward(arch):
    """Each layer's maps equal a hand-run forward pass up to that layer; probabilities equal softmax(model)."""
    dataset = "cifar10" if arch in ("cifar-net", "res-net-small", "res-net-deep") else "mnist"
    model = _model(arch, dataset)
    x = _image(catalog.get_info(dataset).input_shape)
    maps, probs = inspection.extract_feature_maps(model, x)
    with torch.no_grad():
        ref = _manual_maps(model, x[None])
        ref_probs = torch.softmax(model(x[None]), 1)[0]
    assert [m.name for m in maps] == [n for n in ref if not n.startswith("drop")]
    for m in maps:
        np.testing.assert_allclose(m.maps, ref[m.name][0].numpy(), rtol=1e-5, atol=1e-6, err_msg=m.name)
        assert m.shape == tuple(ref[m.name].shape[1:])
    np.testing.assert_allclose(probs, ref_probs.numpy(), rtol=1e-5, atol=1e-7)


def test_feature_maps_of_trained_run_and_top3(trained):
    """On a trained run: maps match the layer table's output shapes; top-3 is sorted and sums below 1."""
    from cnn_core.nets.architectures import layer_table

    model, meta = snapshots.load_weights(_weights(trained["lenet"], "best"))
    test = inspection.load_test_set("mnist")
    maps, probs = inspection.extract_feature_maps(model, test.x(0, meta))
    shapes = {r.name.removeprefix("features."): r.output_shape for r in layer_table(model)[0]}
    assert all(m.shape == shapes[m.name] for m in maps)
    top = predict.top_k(probs, test.classes)
    assert len(top) == 3 and top[0][1] >= top[1][1] >= top[2][1] and sum(p for _, p in top) <= 1 + 1e-6
    assert top[0][0] == test.classes[int(probs.argmax())]


def test_mlp_has_no_feature_maps_but_dense_templates():
    """A model without convs: no feature layers, no Grad-CAM layer, first dense weights as images."""
    model = _model("mlp")
    assert inspection.feature_layers(model) == [] and inspection.default_cam_layer(model) is None
    name, templates = inspection.dense_templates(model)
    np.testing.assert_array_equal(templates.reshape(len(templates), -1), model.classifier.fc1.weight.detach().numpy())


# ---- saliency and gradients -------------------------------------------------------------------------
@pytest.mark.parametrize("arch,dataset", [(a, "cifar2" if a.startswith(("cifar", "res")) else "mnist")
                                          for a in ARCHS])
def test_grad_cam_has_input_size_and_is_non_negative(arch, dataset):
    """Grad-CAM is (H, W) of the input, finite, in 0..1, for every architecture."""
    model = _model(arch, dataset)
    x = _image(catalog.get_info(dataset).input_shape, seed=1)
    cam = attribution.grad_cam(model, x, target=1)
    assert cam.shape == x.shape[1:] and np.isfinite(cam).all()
    assert cam.min() >= 0 and cam.max() <= 1 + 1e-6


def test_grad_cam_equals_manual_computation():
    """simple-cnn at act2: the weights are the spatial means of dScore/dA, as computed by hand."""
    model = _model("simple-cnn", seed=2)
    x = _image(seed=3)
    cam = attribution.grad_cam(model, x, target=4, layer="act2")
    f = model.features
    a = f[:5](x[None]).detach().requires_grad_(True)                  # (1, 32, 11, 11) after act2
    score = model.classifier(f[5:](a))[0, 4]
    g, = torch.autograd.grad(score, a)
    ref = F.relu((g.mean((2, 3), keepdim=True) * a).sum(1, keepdim=True))
    ref = F.interpolate(ref, size=(28, 28), mode="bilinear", align_corners=False)[0, 0].detach()
    ref = (ref / ref.max()).numpy() if ref.max() > 0 else ref.numpy()
    np.testing.assert_allclose(cam, ref, rtol=1e-4, atol=1e-6)


def test_grad_cam_on_trained_run_lights_up(trained):
    """For the predicted class of a trained model the map is not all zero (its maximum is 1)."""
    model, meta = snapshots.load_weights(_weights(trained["cifar"], "best"))
    test = inspection.load_test_set("cifar2")
    x = test.x(0, meta)
    _, probs = inspection.extract_feature_maps(model, x)
    cam = attribution.grad_cam(model, x, int(probs.argmax()))
    assert cam.shape == (32, 32) and cam.max() == pytest.approx(1.0)


def test_gradient_saliency_for_a_model_without_convs():
    """Input-gradient saliency works for the MLP: (H, W), non-negative, max 1."""
    sal = attribution.gradient_saliency(_model("mlp"), _image(), target=3)
    assert sal.shape == (28, 28) and sal.min() >= 0 and sal.max() == pytest.approx(1.0)


def test_filter_gradients_equal_backward_and_leave_model_alone():
    """Gradients equal loss.backward() on a copy; the inspected model keeps no .grad and stays in eval."""
    model = _model("lenet", seed=4)
    x, y = torch.randn(16, 1, 28, 28), torch.arange(16) % 10
    grads = dict(inspection.filter_gradients(model, x, y))
    ref = copy.deepcopy(model)
    F.cross_entropy(ref(x), y).backward()
    for name, m in ((n, m) for n, m in ref.named_modules() if isinstance(m, nn.Conv2d)):
        np.testing.assert_allclose(grads[name], m.weight.grad.numpy(), rtol=1e-5, atol=1e-7)
    image = x[0]
    attribution.grad_cam(model, image, 1)
    attribution.gradient_saliency(model, image, 1)
    assert all(p.grad is None for p in model.parameters()) and not model.training
    assert not image.requires_grad
    with pytest.raises(ValueError, match="classes 0..9"):
        attribution.grad_cam(model, image, 10)


# ---- figures ----------------------------------------------------------------------------------------
def test_figures_have_class_names_and_colour_first_layer(trained):
    """RGB first-layer filters draw as a colour image; the confusion matrix has class names on both axes."""
    model, meta = snapshots.load_weights(_weights(trained["cifar"], "best"))
    (name, w), (name2, w2) = inspection.conv_filters(model)
    assert plots.filters_figure(w, name).data[0].type == "image"
    assert plots.filters_figure(w2, name2, per_filter=True).data[0].type == "heatmap"
    fig = plots.confusion_figure(np.array([[3, 1], [0, 4]]), ("airplane", "bird"), normalized=True)
    assert list(fig.data[0].x) == ["airplane", "bird"] and list(fig.data[0].y) == ["airplane", "bird"]
    assert list(fig.data[0].text[0]) == ["75%", "25%"]


def test_mosaic_places_tiles_with_gaps():
    """Tiles go row by row with one blank (NaN) pixel between them."""
    tiles = np.arange(5 * 2 * 2, dtype=np.float32).reshape(5, 2, 2)
    m = plots.mosaic(tiles, cols=3)
    assert m.shape == (2 * 2 + 1, 3 * 2 + 2)
    np.testing.assert_array_equal(m[3:5, 0:2], tiles[3])
    assert np.isnan(m[2]).all() and np.isnan(m[:, 2]).all()


def test_weight_and_gradient_histograms_over_epochs():
    """The engine logs every conv/linear layer's gradient histogram at each epoch's end; the snapshots give
    the weights at epochs 0..2; both come out as one distribution per epoch that sums to 1."""
    path = store.create_run(TrainConfig(dataset="mnist", arch="lenet", val_size=100, batch_size=32, epochs=2, lr=0.05))
    assert engine.run_training(path).status == "completed"
    grads = inspection.gradient_history(path)
    assert set(grads) == {"features.conv1", "features.conv2", "classifier.fc1", "classifier.fc2"}
    assert sorted(grads["features.conv1"]) == [1, 2]
    assert sum(grads["features.conv1"][1]["counts"]) == 10 * 1 * 5 * 5        # every weight's gradient, once
    weights = inspection.weight_histories(path)
    assert sorted(weights["features.conv2"]) == [0, 1, 2] and weights["features.conv2"][0].size == 20 * 10 * 25
    for frame in (inspection.histogram_frame(weights["features.conv2"]),
                  inspection.gradient_frame(grads["classifier.fc1"])):
        assert frame.groupby("epoch")["share"].sum().round(6).eq(1.0).all()
    assert not (weights["features.conv2"][0] == weights["features.conv2"][2]).all()    # the weights moved
    sizes = inspection.gradient_sizes(grads["features.conv1"])
    assert list(sizes["epoch"]) == [1, 2] and not sizes["estimated"].any() and (sizes["rms"] > 0).all()
    # a log made before the size was: estimated from the histogram's bins, right within a factor of 2 (the
    # chart's log axis; most weights share the bin around 0, whose centre is not 0)
    older = {e: {k: v for k, v in h.items() if k != "rms"} for e, h in grads["classifier.fc1"].items()}
    estimate, true = inspection.gradient_sizes(older), inspection.gradient_sizes(grads["classifier.fc1"])
    assert estimate["estimated"].all() and ((estimate["rms"] / true["rms"]).between(0.5, 2)).all()


def test_gradient_size_is_the_root_mean_square_of_the_gradient():
    """The logged size is the gradient's RMS: a layer whose every gradient is 3 or -3 has size 3."""
    net = torch.nn.Sequential(torch.nn.Linear(4, 2, bias=False))
    net[0].weight.grad = torch.tensor([[3.0, -3.0, 3.0, -3.0], [-3.0, 3.0, 3.0, 3.0]])
    (h,) = gradients.gradient_histograms(net).values()
    assert h["rms"] == 3.0 and sum(h["counts"]) == 8 and (h["lo"], h["hi"]) == (-3.0, 3.0)
    assert inspection.gradient_sizes({1: h})["rms"].tolist() == [3.0]
