"""The tutorials' slips with the true figures (cnn_core/nets/slips.py), as the Train page shows them."""
from __future__ import annotations

import math

import pytest

from cnn_core.nets import slips


def test_the_tutorials_shared_blocks_have_one_blocks_weights():
    f = slips.shared_blocks((3, 32, 32), 2, n_chans1=32, n_blocks=10)
    assert f["distinct_blocks_tutorial"] == 1
    assert f["block"] == 32 * 32 * 9 + 2 * 32                        # conv 3x3 (no bias) + batch norm
    assert f["fixed"] - f["tutorial"] == 9 * f["block"]              # nine blocks' weights the tutorial lacks


@pytest.mark.parametrize("classes", [2, 10])
def test_softmax_before_the_loss_raises_its_floor_and_shrinks_the_gradient(classes):
    f = slips.softmax_twice(classes)
    assert f["floor"] == pytest.approx(-math.log(math.e / (math.e + classes - 1)))
    assert f["logits"]["loss"] < f["floor"] < f["softmax first"]["loss"]
    assert f["softmax first"]["grad"] < f["logits"]["grad"]
