"""The NumPy-only network: gradients against finite differences and TensorFlow's autodiff, batch norm
against ``keras.layers.BatchNormalization``, the forward pass against scikit-learn's MLPClassifier,
the scikit-learn estimator protocol, checkpoints (and the refusal of unsafe or damaged ones), and the
errors for bad input."""

import os
import subprocess
import sys
import warnings
import zipfile

import numpy as np
import pytest

from tfcourse.numpy_nn import (
    ACTIVATIONS,
    INITIALIZERS,
    BatchNorm,
    NumpyMLP,
    SymmetryWarning,
    TrainingDiverged,
    checkpoints,
)
from tfcourse.numpy_nn.layers import activate, activation_backward, init_weights, softmax_cross_entropy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny(activation="tanh", batch_norm=False, **params):
    """A float64 network small enough for finite differences: 5-6-4-3."""
    defaults = dict(
        n_layers=4,
        layer_sizes=(5, 6, 4, 3),
        activation=activation,
        weight_init="glorot",
        bias_init="same",
        dtype="float64",
        batch_norm=batch_norm,
    )
    return NumpyMLP(**{**defaults, **params}).initialize()


def batch(rows=7, features=5, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((rows, features)), rng.integers(0, classes, rows)


def relative_error(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-300)


def gradients_agree(analytic, reference, tolerance=1e-6):
    """Relative error below ``tolerance``; or, for a gradient that is zero in exact arithmetic, both at
    rounding level. (With ``linear`` and batch norm, a hidden layer's ``beta`` shifts every unit's input to
    the next batch norm by a constant, which that batch norm subtracts again: its gradient is 0, and a
    relative error of two rounding errors means nothing.)"""
    if np.linalg.norm(analytic) < 1e-12:
        return np.linalg.norm(reference) < 1e-8
    return relative_error(analytic, reference) < tolerance


def digits(limit=None):
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return (x / 16.0)[:limit], y[:limit]


# ----------------------------------------------------------------------------- the package loads NumPy only


def test_the_package_imports_numpy_only():
    """Imported and trained with TensorFlow, Keras and scikit-learn made unimportable."""
    probe = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('tensorflow', 'keras', 'sklearn', 'matplotlib', 'scipy'):
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
import numpy as np
from tfcourse.numpy_nn import NumpyMLP
x = np.random.default_rng(0).random((40, 4)); y = (x[:, 0] > 0.5).astype(int)
model = NumpyMLP(n_layers=3, layer_sizes=(4, 8, 2), num_epochs=3, batch_size=8, weight_init='he').fit(x, y)
print(sorted(m.split('.')[0] for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'sklearn', 'scipy')), model.score(x, y) > 0)
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["[]", "True"]


# ----------------------------------------------------------------------------- gradients


def numeric_gradients(model, x, y, eps=1e-6):
    grads = {}
    for name, param, _ in model._params_and_grads():
        numeric = np.zeros_like(param)
        for index in np.ndindex(param.shape):
            old = param[index]
            param[index] = old + eps
            up, _ = model.loss_and_gradients(x, y)
            param[index] = old - eps
            down, _ = model.loss_and_gradients(x, y)
            param[index] = old
            numeric[index] = (up - down) / (2 * eps)
        grads[name] = numeric
    return grads


@pytest.mark.parametrize("batch_norm", [False, True], ids=["plain", "batchnorm"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gradients_agree_with_central_finite_differences(activation, batch_norm):
    model = tiny(activation, batch_norm, l2=0.01)
    x, y = batch()
    _, analytic = model.loss_and_gradients(x, y)
    numeric = numeric_gradients(model, x, y)
    assert set(analytic) == set(numeric) and len(analytic) == (8 if batch_norm else 6)
    for name in analytic:
        assert gradients_agree(analytic[name], numeric[name]), (name, relative_error(analytic[name], numeric[name]))


def keras_twin(model):
    """The same network in Keras (float64), with ``model``'s parameters: Dense, BatchNormalization, Activation;
    ``model.l2`` as Keras' ``L2(l2 / 2)`` kernel regulariser (Keras' L2 adds ``l * sum(w^2)``)."""
    import keras

    keras_activation = {"relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh", "linear": "linear"}[model.activation]
    inputs = keras.Input((model.layer_sizes[0],), dtype="float64")
    h = inputs
    layers = []
    for i, (w, b) in enumerate(zip(model.coefs_, model.intercepts_)):
        hidden = i < len(model.coefs_) - 1
        regularizer = keras.regularizers.L2(model.l2 / 2) if model.l2 else None
        dense = keras.layers.Dense(
            w.shape[1], use_bias=model._has_bias(i), kernel_regularizer=regularizer, dtype="float64"
        )
        h = dense(h)
        dense.set_weights([w, b] if model._has_bias(i) else [w])
        layers.append(dense)
        if hidden:
            if model.batch_norm:
                norm = keras.layers.BatchNormalization(momentum=0.99, epsilon=1e-3, dtype="float64")
                h = norm(h)
                bn = model.batch_norms_[i]
                norm.set_weights([bn.gamma, bn.beta, bn.moving_mean, bn.moving_var])
                layers.append(norm)
            h = keras.layers.Activation(keras_activation, dtype="float64")(h)
    return keras.Model(inputs, h)


@pytest.mark.parametrize("batch_norm", [False, True], ids=["plain", "batchnorm"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gradients_equal_tensorflow_autodiff_of_the_same_network(activation, batch_norm):
    import tensorflow as tf

    model = tiny(activation, batch_norm)
    x, y = batch(rows=9)
    twin = keras_twin(model)
    loss, grads = model.loss_and_gradients(x, y)
    with tf.GradientTape() as tape:
        logits = twin(tf.constant(x), training=True)
        tf_loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(tf.constant(y), logits))
    tf_grads = tape.gradient(tf_loss, twin.trainable_variables)
    assert loss == pytest.approx(float(tf_loss), rel=1e-10)
    # Keras orders a Dense layer's kernel, bias and a BatchNormalization's gamma, beta layer by layer
    names = []
    for i in range(len(model.coefs_)):
        names += [f"W{i + 1}"] + ([f"b{i + 1}"] if model._has_bias(i) else [])
        if batch_norm and i < len(model.coefs_) - 1:
            names += [f"gamma{i + 1}", f"beta{i + 1}"]
    assert len(names) == len(tf_grads)
    for name, tf_grad in zip(names, tf_grads):
        assert gradients_agree(grads[name], tf_grad.numpy()), (name, relative_error(grads[name], tf_grad.numpy()))


# ----------------------------------------------------------------------------- batch norm vs Keras


def test_batchnorm_forward_and_backward_equal_keras_batchnormalization():
    import keras
    import tensorflow as tf

    rng = np.random.default_rng(1)
    x = rng.standard_normal((16, 5)) * 3 + 1
    dy = rng.standard_normal((16, 5))
    gamma, beta = rng.random(5) + 0.5, rng.standard_normal(5)
    moving_mean, moving_var = rng.standard_normal(5), rng.random(5) + 0.5

    ours = BatchNorm(5, momentum=0.9, epsilon=1e-3, dtype=np.float64)
    ours.gamma[...], ours.beta[...] = gamma, beta
    ours.moving_mean[...], ours.moving_var[...] = moving_mean, moving_var
    theirs = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-3, dtype="float64")
    theirs.build((None, 5))
    theirs.set_weights([gamma, beta, moving_mean, moving_var])

    # inference mode: the moving statistics, before any update
    np.testing.assert_allclose(ours.forward(x, np.empty_like(x), training=False), theirs(x, training=False), rtol=1e-12)

    # train mode: batch statistics, then the moving averages move the same way
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y_keras = theirs(xt, training=True)
        loss = tf.reduce_sum(y_keras * dy)
    dx_keras, dgamma_keras, dbeta_keras = tape.gradient(loss, [xt, theirs.gamma, theirs.beta])
    y_ours = ours.forward(x, np.empty_like(x), training=True)
    np.testing.assert_allclose(y_ours, y_keras, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.moving_mean, theirs.moving_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.moving_var, theirs.moving_variance.numpy(), rtol=1e-12)
    dx = ours.backward(dy.copy())
    np.testing.assert_allclose(dx, dx_keras, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.dgamma, dgamma_keras, rtol=1e-10)
    np.testing.assert_allclose(ours.dbeta, dbeta_keras, rtol=1e-10)

    # and inference after the update uses the moved averages, as Keras does
    np.testing.assert_allclose(ours.forward(x, np.empty_like(x), training=False), theirs(x, training=False), rtol=1e-10)


def test_the_forward_pass_equals_mlpclassifier_on_its_own_weights(tmp_path):
    """MLPClassifier's coefs_/intercepts_ saved as a checkpoint and loaded by NumpyMLP give its probabilities."""
    from sklearn.neural_network import MLPClassifier

    x, y = digits(400)
    for activation, sklearn_name in [
        ("relu", "relu"),
        ("sigmoid", "logistic"),
        ("tanh", "tanh"),
        ("linear", "identity"),
    ]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # 5 iterations: not converged, and that is fine here
            reference = MLPClassifier((12, 7), activation=sklearn_name, max_iter=5, random_state=0).fit(x, y)
        weights, _ = checkpoints.save(str(tmp_path), 5, activation, reference.coefs_, reference.intercepts_)
        ours = NumpyMLP.load(weights, dtype="float64")
        np.testing.assert_allclose(ours.predict_proba(x), reference.predict_proba(x), rtol=1e-9, atol=1e-12)
        assert ours.score(x, y) == reference.score(x, y)


# ----------------------------------------------------------------------------- pieces


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_each_activation_and_its_derivative(activation):
    z = np.linspace(-30, 30, 601)
    reference = {
        "relu": np.maximum(z, 0),
        "sigmoid": 1 / (1 + np.exp(-z)),
        "tanh": np.tanh(z),
        "linear": z,
    }[activation]
    a = activate(activation, z, np.empty_like(z))
    # sigmoid is computed as 0.5 (1 + tanh(z / 2)), which never overflows; its error is absolute, a few
    # units of float64 rounding at 1 (what the next layer sees), so its far tail is not relatively exact
    np.testing.assert_allclose(a, reference, rtol=1e-12, atol=1e-15 if activation == "sigmoid" else 0)
    # the derivative written through the output equals a central difference of the function
    z = np.linspace(-4, 4, 81) + 0.0125  # no point on relu's kink
    eps = 1e-6
    numeric = (activate(activation, z + eps, np.empty_like(z)) - activate(activation, z - eps, np.empty_like(z))) / (
        2 * eps
    )
    delta = activation_backward(activation, activate(activation, z, np.empty_like(z)), np.ones_like(z))
    np.testing.assert_allclose(delta, numeric, rtol=1e-6, atol=1e-9)


def test_sigmoid_does_not_overflow_in_float32():
    z = np.array([-1000.0, -80.0, 0.0, 80.0, 1000.0], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = activate("sigmoid", z, np.empty_like(z))
    np.testing.assert_allclose(a, [0, 0, 0.5, 1, 1], atol=1e-7)


def test_softmax_cross_entropy_is_stable_and_its_gradient_fused():
    logits = np.array([[1e4, 0.0, -1e4], [0.0, 0.0, 0.0], [-1e3, 1e3, 0.0]])
    labels = np.array([1, 2, 0])
    grad = np.empty_like(logits)
    loss = softmax_cross_entropy(logits, labels, grad_out=grad)
    assert loss == pytest.approx((1e4 + np.log(3) + 2e3) / 3)
    probabilities = np.array([[1, 0, 0], [1 / 3, 1 / 3, 1 / 3], [0, 1, 0]])
    np.testing.assert_allclose(grad, (probabilities - np.eye(3)[labels]) / 3, atol=1e-12)


def test_the_config_names_the_same_activations_and_initialisations():
    from tfcourse import config

    assert config.NUMPY_ACTIVATIONS == ACTIVATIONS and config.NUMPY_INITS == INITIALIZERS


def test_every_initialisation_has_its_distribution():
    rng = np.random.default_rng(0)
    fan_in, fan_out = 400, 300
    draws = {name: init_weights(name, fan_in, fan_out, rng, np.float64) for name in INITIALIZERS}
    assert all(d.shape == (fan_in, fan_out) for d in draws.values())
    assert not draws["zero"].any()
    assert draws["random"].min() >= 0 and draws["random"].max() < 0.01
    assert draws["random"].mean() == pytest.approx(0.005, rel=0.02)
    assert draws["normal"].mean() == pytest.approx(0, abs=2e-4)
    assert draws["normal"].std() == pytest.approx(0.01, rel=0.02)
    assert draws["he"].std() == pytest.approx(np.sqrt(2 / fan_in), rel=0.02)
    limit = np.sqrt(6 / (fan_in + fan_out))
    assert np.abs(draws["glorot"]).max() <= limit and draws["glorot"].std() == pytest.approx(
        limit / np.sqrt(3), rel=0.02
    )
    # biases start at zero unless the course's "same as the weights" variant is asked for
    assert not any(b.any() for b in NumpyMLP(weight_init="normal").initialize().intercepts_)
    assert all(b.any() for b in NumpyMLP(weight_init="normal", bias_init="same").initialize().intercepts_)


def test_zero_initialisation_cannot_break_symmetry_and_says_so():
    x, y = digits(300)
    sizes = (64, 16, 8, 10)
    with pytest.warns(SymmetryWarning, match="cannot break symmetry"):
        stuck = NumpyMLP(n_layers=4, layer_sizes=sizes, activation="sigmoid", weight_init="zero", num_epochs=5).fit(
            x, y
        )
    assert stuck.distinct_units() == [1, 1]
    assert stuck.coefs_[0].any()  # it did train: the weights moved, all units alike
    broken = NumpyMLP(n_layers=4, layer_sizes=sizes, activation="sigmoid", weight_init="normal", num_epochs=5).fit(x, y)
    assert broken.distinct_units() == [16, 8]


# ----------------------------------------------------------------------------- training and the estimator API


def test_training_learns_digits_and_records_its_history():
    x, y = digits()
    model = NumpyMLP(n_layers=3, layer_sizes=(64, 64, 10), weight_init="he", num_epochs=8, momentum=0.9, nesterov=True)
    model.fit(x[:1400], y[:1400], x[1400:], y[1400:])
    assert set(model.history_) == {"loss", "accuracy", "val_loss", "val_accuracy", "seconds"}
    assert all(len(v) == 8 for v in model.history_.values())
    assert model.history_["loss"][-1] < model.history_["loss"][0] / 3
    assert model.score(x[1400:], y[1400:]) > 0.9  # chance is 0.1
    probabilities = model.predict_proba(x[1400:])
    assert probabilities.shape == (len(x) - 1400, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-6)
    assert model.predict(x[:5]).shape == (5,) and set(model.predict(x)) <= set(range(10))


def test_batch_norm_trains_and_predicts_with_its_moving_averages():
    x, y = digits()
    model = NumpyMLP(n_layers=4, layer_sizes=(64, 32, 16, 10), batch_norm=True, num_epochs=6).fit(x[:1400], y[:1400])
    assert model.score(x[1400:], y[1400:]) > 0.85
    assert not np.allclose(model.batch_norms_[0].moving_mean, 0)
    # inference does not depend on the batch: one row alone gets the same probabilities
    np.testing.assert_allclose(model.predict_proba(x[1400:1401]), model.predict_proba(x[1400:1500])[:1], rtol=1e-5)


def test_a_seed_fixes_initialisation_and_shuffling():
    x, y = digits(500)
    params = dict(n_layers=3, layer_sizes=(64, 20, 10), weight_init="he", num_epochs=3, batch_size=16)
    first, second = NumpyMLP(seed=3, **params).fit(x, y), NumpyMLP(seed=3, **params).fit(x, y)
    other = NumpyMLP(seed=4, **params).fit(x, y)
    for a, b in zip(first.coefs_, second.coefs_):
        np.testing.assert_array_equal(a, b)
    assert first.history_["loss"] == second.history_["loss"]
    assert not np.array_equal(first.coefs_[0], other.coefs_[0])
    # the same initialisation, a different shuffle: only the order of the steps differs
    unshuffled = NumpyMLP(seed=3, **params).initialize()
    np.testing.assert_array_equal(unshuffled.coefs_[0], NumpyMLP(seed=3, **params).initialize().coefs_[0])


def test_every_epoch_is_freshly_shuffled():
    """Rows sorted by class: SGD in that order ends every epoch on the last classes and forgets the
    first ones; reshuffled every epoch it learns them all. And each epoch's order is a new permutation."""
    x, y = digits(600)
    order = np.argsort(y, kind="stable")
    x, y = x[order], y[order]
    orders = []

    class Recording(NumpyMLP):
        def _epoch_order(self, n):
            orders.append(super()._epoch_order(n))
            return orders[-1]

    model = Recording(n_layers=3, layer_sizes=(64, 32, 10), weight_init="he", num_epochs=6, batch_size=20).fit(x, y)
    assert model.score(x, y) > 0.85
    assert len(orders) == 6 and all(sorted(o) == list(range(600)) for o in orders)
    assert all(not np.array_equal(a, b) for a, b in zip(orders, orders[1:]))

    class Unshuffled(NumpyMLP):
        def _epoch_order(self, n):
            return np.arange(n)

    sorted_sgd = Unshuffled(n_layers=3, layer_sizes=(64, 32, 10), weight_init="he", num_epochs=6, batch_size=20)
    assert sorted_sgd.fit(x, y).score(x, y) < 0.6


def test_sklearn_clone_and_grid_search_work_on_it():
    from sklearn.base import clone, is_classifier
    from sklearn.model_selection import GridSearchCV

    x, y = digits(600)
    model = NumpyMLP(n_layers=3, layer_sizes=(64, 24, 10), weight_init="he", num_epochs=10)
    copy = clone(model)
    assert copy is not model and copy.get_params() == model.get_params()
    assert is_classifier(model)
    assert model.set_params(learning_rate=0.05) is model and model.learning_rate == 0.05
    with pytest.raises(ValueError, match="Invalid parameter 'learning_rte'"):
        model.set_params(learning_rte=0.1)
    search = GridSearchCV(model, {"learning_rate": [0.001, 0.1], "activation": ["relu", "tanh"]}, cv=3)
    search.fit(x, y)
    assert search.best_params_["learning_rate"] == 0.1  # 0.001 barely moves in 10 epochs
    assert search.best_score_ > 0.8
    assert len(search.cv_results_["mean_test_score"]) == 4
    assert not hasattr(model, "coefs_")  # the search trained clones, not the estimator passed in


# ----------------------------------------------------------------------------- checkpoints


@pytest.mark.parametrize("batch_norm", [False, True], ids=["plain", "batchnorm"])
def test_checkpoints_round_trip_in_the_course_naming(tmp_path, batch_norm):
    x, y = digits(400)
    model = NumpyMLP(
        n_layers=4,
        layer_sizes=(64, 16, 12, 10),
        activation="tanh",
        num_epochs=4,
        checkpoint_every=2,
        checkpoint_dir=str(tmp_path),
        batch_norm=batch_norm,
        weight_init="glorot",
    ).fit(x, y)
    names = {"2_tanh_weights.npz", "2_tanh_biases.npz", "4_tanh_weights.npz", "4_tanh_biases.npz"}
    if batch_norm:
        names |= {"2_tanh_batchnorm.npz", "4_tanh_batchnorm.npz"}
    assert set(os.listdir(tmp_path)) == names
    assert sorted(model.checkpoints_) == [2, 4]
    restored = NumpyMLP.load(str(tmp_path / "4_tanh_weights.npz"))
    assert (
        restored.activation == "tanh" and restored.layer_sizes == (64, 16, 12, 10) and restored.batch_norm == batch_norm
    )
    np.testing.assert_array_equal(restored.predict_proba(x), model.predict_proba(x))
    earlier = NumpyMLP.load(str(tmp_path / "2_tanh_weights.npz"))
    assert not np.array_equal(earlier.coefs_[0], restored.coefs_[0])


class _Evil:
    """Unpickling this writes a file: what a loader that trusts pickles would let a checkpoint do."""

    marker = None

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _good_checkpoint(folder):
    x, y = digits(200)
    model = NumpyMLP(n_layers=3, layer_sizes=(64, 8, 10), num_epochs=1, weight_init="he").fit(x, y)
    return model.save(str(folder), 1)


def test_a_checkpoint_holding_pickled_objects_is_refused_and_runs_nothing(tmp_path):
    weights, biases = _good_checkpoint(tmp_path)
    marker = tmp_path / "pwned"
    _Evil.marker = str(marker)
    evil = np.empty(1, dtype=object)
    evil[0] = _Evil()
    np.savez(biases, b1=evil, b2=np.zeros(10))
    with pytest.raises(ValueError, match="pickled Python objects.*refused"):
        NumpyMLP.load(weights)
    assert not marker.exists()


def test_damaged_checkpoints_are_refused_with_the_file_named(tmp_path):
    weights, biases = _good_checkpoint(tmp_path)
    good = open(weights, "rb").read()
    with open(weights, "wb") as handle:  # cut short, as a full disk or a kill would leave it
        handle.write(good[: len(good) // 2])
    with pytest.raises(ValueError, match=r"4?1_relu_weights.npz: the weights file is truncated or corrupt"):
        NumpyMLP.load(weights)
    np.savez(weights, W1=np.zeros((64, 8)), W2=np.zeros((9, 10)))
    with pytest.raises(ValueError, match="W2 has shape \\(9, 10\\) but W1 gives 8 units"):
        NumpyMLP.load(weights)
    np.savez(weights, W1=np.zeros((64, 8)), W2=np.zeros((8, 10)))
    np.savez(biases, b1=np.zeros(8), b2=np.zeros(3))
    with pytest.raises(ValueError, match="b2 has shape \\(3,\\), expected \\(10,\\)"):
        NumpyMLP.load(weights)
    np.savez(biases, b1=np.zeros(8), b3=np.zeros(10))
    with pytest.raises(ValueError, match="expected arrays b1, b2; found b1, b3"):
        NumpyMLP.load(weights)
    os.remove(biases)
    with pytest.raises(ValueError, match="biases file not found"):
        NumpyMLP.load(weights)
    assert zipfile.is_zipfile(weights)


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(n_layers=4), "n_layers=4 but layer_sizes has 3 entries"),
        (dict(layer_sizes=(64, 0, 10)), "positive integers"),
        (dict(layer_sizes=(64, 10, 1)), "one unit per class"),
        (dict(activation="softplus"), "Unknown activation 'softplus'; use one of relu, sigmoid, tanh, linear"),
        (dict(weight_init="xavier"), "Unknown weight_init 'xavier'; use one of zero, random, normal, he, glorot"),
        (dict(learning_rate=0), "learning_rate must be a finite number"),
        (dict(batch_size=0), "batch_size must be a positive integer"),
        (dict(dtype="float16"), "dtype must be one of float32, float64"),
    ],
)
def test_bad_parameters_are_named(params, message):
    x, y = digits(50)
    model = NumpyMLP(**{**dict(n_layers=3, layer_sizes=(64, 8, 10), num_epochs=1), **params})
    with pytest.raises(ValueError, match=message.replace("(", "\\(").replace(")", "\\)")):
        model.fit(x, y)


def test_bad_data_is_named():
    x, y = digits(50)
    model = NumpyMLP(n_layers=3, layer_sizes=(64, 8, 10), num_epochs=1)
    with pytest.raises(ValueError, match=r"X must be 2-D .* got shape \(50, 8, 8\)\. Flatten"):
        model.fit(x.reshape(50, 8, 8), y)
    with pytest.raises(ValueError, match="X has 63 features per example but the input layer has 64"):
        model.fit(x[:, :63], y)
    with pytest.raises(ValueError, match=r"labels outside 0\.\.9 \(e\.g\. \[10, 12\], 2 rows\)"):
        model.fit(x, np.where(np.arange(50) == 3, 10, np.where(np.arange(50) == 4, 12, y)))
    with pytest.raises(ValueError, match="one label per row"):
        model.fit(x, y[:-1])
    holes = x.copy()
    holes[7, 3] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite values in 1 rows"):
        model.fit(holes, y)
    with pytest.raises(ValueError, match="not fitted yet"):
        model.predict(x)
    with pytest.raises(ValueError, match="Pass both X_val and y_val"):
        model.fit(x, y, X_val=x)


def test_a_diverging_run_stops_with_the_epoch_and_keeps_its_checkpoints(tmp_path):
    x, y = digits(300)
    model = NumpyMLP(
        n_layers=3,
        layer_sizes=(64, 32, 10),
        activation="linear",
        weight_init="he",
        learning_rate=5.0,
        num_epochs=6,
        checkpoint_every=1,
        checkpoint_dir=str(tmp_path),
    )
    with (
        np.errstate(all="ignore"),
        pytest.raises(TrainingDiverged, match="diverged at epoch \\d: the loss is (nan|inf)"),
    ):
        model.fit(x * 50, y)
    with pytest.raises(ValueError, match="not fitted yet"):  # no NaN weights left to predict with
        model.predict(x)
    assert 1 <= len(model.history_["loss"]) <= 6
    kept = sorted(os.listdir(tmp_path))
    for name in kept:  # only finite checkpoints were written, and each one loads
        if name.endswith("_weights.npz"):
            NumpyMLP.load(str(tmp_path / name))


@pytest.mark.parametrize(
    "momentum, nesterov, l2",
    [(0.0, False, 0.0), (0.875, False, 0.0), (0.875, True, 0.01)],
    ids=["sgd", "momentum", "nesterov-l2"],
)
def test_sgd_steps_equal_keras_sgd(momentum, nesterov, l2):
    """Three full-batch steps (the shuffle cannot matter) against keras.optimizers.SGD on the twin network.
    Rates that float32 holds exactly (0.125, 0.875): Keras keeps its hyperparameters in float32."""
    import keras
    import tensorflow as tf

    x, y = batch(rows=12, seed=3)
    model = tiny("tanh", l2=l2, momentum=momentum, nesterov=nesterov, learning_rate=0.125, batch_size=12, num_epochs=3)
    twin = keras_twin(model.initialize())
    optimizer = keras.optimizers.SGD(0.125, momentum=momentum, nesterov=nesterov)
    for _ in range(3):  # Keras' own step on float64 gradients (its compiled losses compute in float32)
        with tf.GradientTape() as tape:
            logits = twin(tf.constant(x), training=True)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(tf.constant(y), logits))
            loss += tf.add_n(twin.losses) if twin.losses else 0.0
        optimizer.apply_gradients(zip(tape.gradient(loss, twin.trainable_variables), twin.trainable_variables))
    model.fit(x, y)
    dense = [layer for layer in twin.layers if isinstance(layer, keras.layers.Dense)]
    for ours, theirs in zip(model.coefs_ + model.intercepts_, [d.kernel for d in dense] + [d.bias for d in dense]):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-8, atol=1e-12)
    assert not np.allclose(model.coefs_[0], NumpyMLP(**model.get_params()).initialize().coefs_[0])  # it moved


def test_verbose_draws_a_progress_line_over_the_epochs(capsys):
    x, y = digits(300)
    NumpyMLP(n_layers=3, layer_sizes=(64, 16, 10), weight_init="he", num_epochs=20, verbose=1).fit(
        x[:200], y[:200], x[200:], y[200:]
    )
    lines = capsys.readouterr().err.splitlines()  # not a terminal: one line every tenth of the run
    assert len(lines) == 10 and lines[-1].startswith("[########################] epoch 20/20 loss ")
    assert "val_acc " in lines[-1] and lines[-1].endswith("0 s left")
    NumpyMLP(n_layers=3, layer_sizes=(64, 16, 10), num_epochs=2).fit(x, y)
    assert capsys.readouterr().err == ""  # verbose=0: silent
