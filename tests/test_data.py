import numpy as np
import pytest

from bnn_saliency import data


def test_verify_sha256_detects_corruption(tmp_path):
    f = tmp_path / "x.bin"
    f.write_bytes(b"hello")
    good = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"  # sha256("hello")
    data.verify_sha256(f, good)
    f.write_bytes(b"hellp")
    with pytest.raises(data.ChecksumError, match="expected"):
        data.verify_sha256(f, good)


def test_data_dir_that_does_not_exist(monkeypatch, tmp_path):
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(data.DataNotFoundError, match="offline data mirror"):
        data.data_dir()


def test_missing_archive_says_how_to_get_it(monkeypatch, tmp_path):
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    with pytest.raises(data.DataNotFoundError, match="keras.datasets.cifar10"):
        data.load_cifar10()


def test_missing_imagenet_samples(monkeypatch, tmp_path):
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    with pytest.raises(data.DataNotFoundError, match="imagenet-sample-images"):
        data.imagenet_samples()


def test_corrupted_imagenet_sample(monkeypatch, tmp_path):
    folder = tmp_path / "imagenet-samples"
    folder.mkdir()
    (folder / "fake.JPEG").write_bytes(b"not an image")
    (folder / "index.tsv").write_text("index\tsynset\tname\tfile\tsha256\n"
                                      "7\tn0\tfake\tfake.JPEG\t" + "0" * 64 + "\n")
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    with pytest.raises(data.ChecksumError):
        data.load_imagenet_sample("fake")
    with pytest.raises(KeyError, match="no ImageNet sample"):
        data.load_imagenet_sample("unicorn")


@pytest.mark.needs_data
def test_cifar10_from_mirror():
    c = data.load_cifar10()
    assert c.source == "mirror:cifar10-jpeg" and c.source_sha256 == data.CIFAR10_SHA256
    assert c.x_train.shape == (50000, 32, 32, 3) and c.x_test.shape == (10000, 32, 32, 3)
    assert c.x_train.dtype == np.uint8
    assert np.bincount(c.y_test).tolist() == [1000] * 10
    assert np.bincount(c.y_train).tolist() == [5000] * 10
    # images are not blank and differ from each other
    assert c.x_test.std() > 40 and not np.array_equal(c.x_test[0], c.x_test[1])
    panel = data.cifar10_panel(c, seed=0)
    assert c.y_test[panel].tolist() == list(range(10))
    assert np.array_equal(panel, data.cifar10_panel(c, seed=0))
    sub = data.cifar10_subset(c, 500, seed=3)
    assert len(np.unique(sub)) == 500 and np.array_equal(sub, data.cifar10_subset(c, 500, seed=3))
    with pytest.raises(ValueError):
        data.cifar10_subset(c, 0)


@pytest.mark.needs_data
def test_imagenet_sample_tabby():
    img, idx = data.load_imagenet_sample("tabby", size=224)
    assert idx == 281 and img.shape == (224, 224, 3) and img.dtype == np.float32
    assert 0 <= img.min() and img.max() <= 255 and img.std() > 10
    img15, idx15 = data.load_imagenet_sample(15, size=128)
    assert idx15 == 15 and img15.shape == (128, 128, 3)


def test_package_photos():
    assert data.package_photo("chelsea").shape[-1] == 3
    assert data.package_photo("china").dtype == np.uint8
    with pytest.raises(KeyError):
        data.package_photo("lena")
