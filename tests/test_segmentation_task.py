"""The pasted-items segmentation task: masks exact by construction, seeded, written as folder pairs."""

import numpy as np
import pytest
from PIL import Image

from headstart.datasets import segmentation as task


def test_paste_mask_is_exactly_where_pixels_changed():
    rng = np.random.default_rng(0)
    image, mask = np.zeros((64, 64, 3), np.uint8), np.zeros((64, 64), np.uint8)
    item = np.zeros((8, 8), np.uint8)
    item[2:6, 3:5] = 255  # a bar of ink on an empty item
    task._paste(image, mask, item, label=4, rng=rng)
    changed = image.any(axis=2)  # the tint and INK keep every pasted pixel above zero
    assert changed.sum() > 0
    np.testing.assert_array_equal(changed, mask == 4)
    assert set(np.unique(mask)) == {0, 4}


def test_pasted_items_is_seeded_and_labels_classes_in_order():
    a = task.pasted_items(5, size=32, classes=[3, 7], seed=2)
    b = task.pasted_items(5, size=32, classes=[3, 7], seed=2)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.masks, b.masks)
    assert a.class_names == ("background", "3", "7")
    assert a.images.shape == (5, 32, 32, 3) and a.images.dtype == np.uint8
    assert set(np.unique(a.masks)) <= {0, 1, 2} and a.masks.max() > 0


def test_pasted_items_rejects_classes_missing_from_the_pool():
    X, y = np.zeros((2, 8, 8), np.uint8), np.array([0, 0])
    with pytest.raises(ValueError, match=r"no items of class \[1\]"):
        task.pasted_items(2, items=(X, y, ("a", "b")), classes=[0, 1])


def test_write_folders_round_trips_images_and_label_masks(tmp_path):
    data = task.pasted_items(3, size=32, seed=0)
    root = task.write_folders(data, tmp_path / "seg")
    for i in range(3):
        np.testing.assert_array_equal(np.asarray(Image.open(root / "images" / f"{i:04d}.png")), data.images[i])
        np.testing.assert_array_equal(np.asarray(Image.open(root / "masks" / f"{i:04d}.png")), data.masks[i])
    assert (root / "classes.txt").read_text().split() == list(data.class_names)
