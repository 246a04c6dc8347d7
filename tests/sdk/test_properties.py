"""Property tests (hypothesis): whatever array a user passes, ``Deblurrer.process`` returns the frame's
shape and dtype or raises ``TypeError``/``ValueError``; whatever bytes a model or manifest file holds,
loading raises ``ModelLoadError``/``ValueError`` (or, for a truncation that still parses, works)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sdk_onnx_models import affine_uint8

import sdk
from sdk.backends import ModelLoadError
from sdk.manifest import Manifest, ManifestError

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                          HealthCheck.too_slow])
DTYPES = st.sampled_from([np.uint8, np.float32, np.float64, np.float16, np.int16, np.int64, np.bool_, np.complex64])


@st.composite
def frames(draw: st.DrawFn) -> np.ndarray:
    """Arrays of any rank 0-4, small sides (0 included), any dtype and values (NaN, Inf, out of range),
    then possibly viewed non-contiguously: Fortran order, strided slices, reversed axes, transposes."""
    dtype = np.dtype(draw(DTYPES))
    ndim = draw(st.integers(0, 4))
    shape = tuple(draw(st.lists(st.integers(0, 9), min_size=ndim, max_size=ndim)))
    if ndim == 3 and draw(st.booleans()):
        shape = shape[:2] + (draw(st.sampled_from([1, 3, 4])),)    # often a plausible channel count
    if dtype.kind == "f":
        elements = st.floats(width=min(dtype.itemsize * 8, 64), allow_nan=True, allow_infinity=True) \
            if draw(st.booleans()) else st.floats(0.0, 1.0, width=min(dtype.itemsize * 8, 64))
    else:
        elements = None
    array = draw(hnp.arrays(dtype, shape, elements=elements))
    view = draw(st.sampled_from(["c", "fortran", "step", "reversed", "transposed"]))
    if view == "fortran":
        array = np.asfortranarray(array)
    elif view == "step" and array.ndim >= 2:
        array = np.repeat(np.repeat(array, 2, axis=0), 2, axis=1)[::2, ::2]
    elif view == "reversed" and array.ndim >= 1:
        array = array[::-1]
    elif view == "transposed" and array.ndim >= 2:
        array = np.swapaxes(array, 0, 1)
    return array


@pytest.fixture(scope="module")
def affine(tmp_path_factory: pytest.TempPathFactory) -> sdk.Deblurrer:
    import sdk_onnx_models as M

    path = M.affine(tmp_path_factory.mktemp("prop") / "affine.onnx", 0.5, 0.25, M.manifest())
    return sdk.Deblurrer(path, device="cpu", threads=1)


@SETTINGS
@given(frame=frames())
def test_process_returns_the_frames_shape_and_dtype_or_a_clear_error(affine, frame):
    try:
        result = affine.process(frame)
    except (TypeError, ValueError):
        return
    assert result.shape == frame.shape and result.dtype == frame.dtype
    if frame.dtype == np.uint8:
        expected = affine_uint8(frame.reshape(*frame.shape[:2], -1)[..., :3], 0.5, 0.25)
        got = result.reshape(*result.shape[:2], -1)
        np.testing.assert_array_equal(got[..., :3], expected)
        if got.shape[2] == 4:
            np.testing.assert_array_equal(got[..., 3], frame[..., 3])    # alpha passes through


@SETTINGS
@given(data=st.binary(max_size=2048))
def test_random_bytes_as_a_model_raise_model_load_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("bytes") / "random.onnx"
    path.write_bytes(data)
    with pytest.raises((ModelLoadError, ValueError)), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sdk.Deblurrer(path, device="cpu", threads=1)


@pytest.fixture(scope="module")
def model_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    import sdk_onnx_models as M

    return M.affine(tmp_path_factory.mktemp("m") / "affine.onnx", 0.5, 0.25, M.manifest()).read_bytes()


@SETTINGS
@given(fraction=st.floats(0.0, 1.0, exclude_max=True), flip=st.integers(0, 255))
def test_truncated_or_corrupted_models_raise_or_still_work(tmp_path_factory, model_bytes, fraction, flip):
    data = bytearray(model_bytes[:int(len(model_bytes) * fraction)])
    if data and flip:
        data[int(len(data) * fraction) % len(data)] ^= flip
    path = tmp_path_factory.mktemp("cut") / "cut.onnx"
    path.write_bytes(bytes(data))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            d = sdk.Deblurrer(path, device="cpu", threads=1)
    except (ModelLoadError, ValueError):
        return
    frame = np.full((8, 8, 3), 100, np.uint8)
    try:
        out = d.process(frame)
    except (ValueError, RuntimeError):      # a corrupted weight may fail in the backend, with a message
        return
    assert out.shape == frame.shape and out.dtype == np.uint8


@pytest.fixture(scope="module")
def manifest_text() -> str:
    return Manifest(architecture="rdafnet", variant="rdafnet-nano", value_range=(-1.0, 1.0), pad_multiple=2,
                    receptive_field=12, tile_exact=True).to_json()


@SETTINGS
@given(cut=st.integers(0, 10_000), junk=st.binary(max_size=64))
def test_truncated_or_random_manifests_raise_manifest_error(manifest_text, cut, junk):
    text = manifest_text[:cut % len(manifest_text)]
    for candidate in (text, junk, text.encode() + junk):
        try:
            parsed = Manifest.from_json(candidate)
        except ManifestError:
            continue
        assert isinstance(parsed, Manifest)         # only whole, valid documents get here
        json.loads(candidate)


@SETTINGS
@given(data=st.dictionaries(st.sampled_from(["architecture", "variant", "value_range", "pad_multiple",
                                             "receptive_field", "tile_exact", "in_channels", "shape_profile",
                                             "schema_version"]),
                            st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.text(max_size=4),
                                      st.lists(st.integers(-2, 2), max_size=3))))
def test_manifest_fields_of_any_type_raise_manifest_error(data):
    try:
        Manifest.from_dict(data)
    except ManifestError:
        pass


@SETTINGS
@given(data=st.binary(max_size=512))
def test_random_sidecar_bytes_raise_manifest_error(tmp_path_factory, data):
    engine = tmp_path_factory.mktemp("eng") / "model.engine"
    engine.write_bytes(b"")
    (engine.parent / "model.engine.json").write_bytes(data)
    with pytest.raises(ManifestError):
        Manifest.read_sidecar(engine)


PLAN = bytes(range(256)) * 3            # stands in for a TensorRT plan: the header code never parses it


@pytest.fixture(scope="module")
def engine_bytes(manifest_text) -> bytes:
    from sdk.backends.engine_file import pack_engine

    return pack_engine(PLAN, Manifest.from_json(manifest_text))


def _read_engine_or_load_error(data: bytes, path) -> None:
    """unpack_engine and load_engine on ``data``: a ModelLoadError/ManifestError (both ValueErrors), or an
    answer that is consistent with the bytes, never another exception."""
    from sdk.backends.engine_file import MAGIC, load_engine, unpack_engine

    try:
        manifest, plan = unpack_engine(data)
    except (ModelLoadError, ManifestError):
        pass
    else:
        if manifest is None:                    # no header: the bytes are taken as a plain plan
            assert plan == data and not data.startswith(MAGIC)
        else:
            assert isinstance(manifest, Manifest) and plan and data.endswith(plan)
    path.write_bytes(data)
    try:
        manifest, where, plan = load_engine(path)
    except (ModelLoadError, ManifestError):
        return
    assert (manifest is None) == (where == "none") and data.endswith(plan)


@SETTINGS
@given(cut=st.integers(0, 10_000), flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 7)), max_size=3),
       junk=st.binary(max_size=64))
def test_truncated_bit_flipped_or_random_engine_files_raise_model_load_error(tmp_path_factory, engine_bytes, cut,
                                                                             flips, junk):
    from sdk.backends.engine_file import MAGIC

    data = bytearray(engine_bytes[:cut % (len(engine_bytes) + 1)])
    for position, bit in flips:
        if data:
            data[position % len(data)] ^= 1 << bit
    path = tmp_path_factory.mktemp("engine") / "model.engine"
    for candidate in (bytes(data), bytes(data) + junk, MAGIC + junk):
        _read_engine_or_load_error(candidate, path)
    if cut % (len(engine_bytes) + 1) < len(engine_bytes) - len(PLAN):      # cut inside the header
        from sdk.backends.engine_file import unpack_engine

        with pytest.raises(ModelLoadError):
            unpack_engine(engine_bytes[:cut % (len(engine_bytes) + 1)] or MAGIC[:1])


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                         st.sampled_from(["architecture", "variant", "value_range", "pad_multiple", "receptive_field",
                                          "tile_exact", "shape_profile", "fp32_layers", "toolchain"]) | st.text(max_size=4),
                         inner, max_size=5), max_leaves=12)


@SETTINGS
@given(body=st.one_of(_JSON.map(lambda v: json.dumps(v).encode()), st.binary(max_size=64),
                      st.integers(1, 200_000).map(lambda depth: b"[" * depth)),
       length_delta=st.sampled_from([0, 0, 0, -1, 1, 1 << 30]))
def test_any_header_manifest_is_read_or_refused_with_model_load_error(tmp_path_factory, body, length_delta):
    import struct

    from sdk.backends.engine_file import MAGIC

    length = max(0, len(body) + length_delta) % (1 << 32)
    data = MAGIC + struct.pack("<I", length) + body + PLAN
    _read_engine_or_load_error(data, tmp_path_factory.mktemp("header") / "model.engine")
