"""The CuPy stand-in refuses what CuPy 14.2 refuses (each rule cites where CuPy does it), counts what
costs time on a GPU, and the recorder writes what replay reads back."""

import warnings

import numpy
import pytest

from devcheck.machine.replay import seam, standin
from devcheck.machine.replay.recording import Recording
from tests.recordings import h100, n_gpus, two_gpus


@pytest.fixture
def cp():
    with seam.replay(h100()):
        yield seam.cupy()


def test_arrays_are_not_numpy_arrays_and_have_no_array_namespace(cp):
    x = cp.arange(3, dtype=cp.float32)
    assert not isinstance(x, numpy.ndarray) and not hasattr(x, "__array_namespace__")
    assert type(x).__module__ == "cupy" and x.device.id == 0
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array is not allowed"):
        numpy.asarray(x)  # core.pyx __array__
    assert x.get().tolist() == [0.0, 1.0, 2.0] and cp.asnumpy(x).dtype == numpy.float32


def test_host_operands_are_refused_as_cupy_refuses_them(cp):
    x = cp.ones(3)
    for bad in (numpy.ones(3), [1.0, 2.0, 3.0]):
        with pytest.raises(TypeError, match="Unsupported type"):
            x + bad  # _scalar.pyx CScalar: numpy arrays and lists are no kernel arguments
        with pytest.raises(TypeError, match="Unsupported type"):
            cp.add(x, bad)
    with pytest.raises(TypeError, match="Unsupported type"):
        numpy.ones(3) + x  # NumPy's ufunc dispatches to CuPy's, which refuses the host array
    assert (x + 2.0).get().tolist() == [3.0, 3.0, 3.0] and (x * numpy.float32(2)).get()[0] == 2.0
    with pytest.raises(TypeError, match="Wrong arguments"):
        cp.add(x, x, where=True)  # _kernel.pyx: out, dtype and casting only


def test_numpy_functions_dispatch_to_cupy_by_module(cp):
    x = cp.arange(4.0)
    total = numpy.sum(x)
    assert isinstance(total, cp.ndarray) and total.ndim == 0 and float(total) == 6.0  # reductions stay 0-d
    assert isinstance(numpy.linalg.norm(x), cp.ndarray)
    assert isinstance(cp.allclose(x, x), cp.ndarray)  # cupy/_logic/comparison.py returns an array


def test_out_of_range_integer_indices_wrap_around(cp):
    x = cp.arange(3.0)
    assert x[cp.asarray([0, 5])].get().tolist() == [0.0, 2.0]  # CuPy wraps where NumPy raises
    with pytest.raises(IndexError):
        x[5]  # a scalar index is still checked


def test_setitem_get_and_set_follow_cupys_checks(cp):
    x = cp.zeros(3, dtype=cp.float32)
    x[:] = 1.0
    x[cp.asarray([0])] = numpy.array([5.0], dtype=numpy.float32)  # an advanced index takes host values
    with pytest.raises(ValueError, match="non-scalar numpy.ndarray cannot be used for fill"):
        x[:] = [1.0, 2.0, 3.0]
    with pytest.raises(TypeError, match="float64 array cannot be obtained from float32 array"):
        x.get(out=numpy.empty(3))
    with pytest.raises(ValueError, match="Shape mismatch"):
        x.set(numpy.ones(2, dtype=numpy.float32))
    with pytest.raises(TypeError, match="Only numpy.ndarray can be set"):
        x.set([1.0, 2.0, 3.0])
    assert x.get().tolist() == [5.0, 1.0, 1.0]


def test_scatter_add_exists_only_where_cupy_has_it(cp):
    x = cp.zeros(3)
    cp.add.at(x, cp.asarray([0, 0, 4]), 1.0)  # 4 wraps to 1
    assert x.get().tolist() == [2.0, 1.0, 0.0]
    with pytest.raises(NotImplementedError):
        cp.multiply.at(x, cp.asarray([0]), 2.0)
    with pytest.raises(TypeError, match="cupy.add.at only supports"):
        cp.add.at(cp.zeros(3, dtype=cp.int8), cp.asarray([0]), 1)  # no atomicAdd for int8


def test_elementwise_kernels_check_their_types(cp):
    kernel = cp.ElementwiseKernel("float32 x", "float32 y", "y = 2 * x + 1", "axpb")
    assert kernel(cp.arange(3, dtype=cp.float32)).get().tolist() == [1.0, 3.0, 5.0]
    with pytest.raises(TypeError, match="Type is mismatched"):
        kernel(cp.arange(3, dtype=cp.float64))
    generic = cp.ElementwiseKernel("T x, T y", "T z", "z = x * y", "mul")
    assert generic(cp.ones(2), cp.ones(2)).dtype == numpy.float64
    with pytest.raises(RuntimeError, match="cannot compile CUDA C"):
        cp.RawKernel('extern "C" __global__ void k() {}', "k")((1,), (1,), ())


def test_elementwise_kernels_refuse_an_output_on_another_device():
    with seam.replay(two_gpus(h100())):
        cp = seam.cupy()
        kernel = cp.ElementwiseKernel("T x", "T y", "y = x + y", "acc")
        with cp.cuda.Device(1):
            y = cp.zeros(3)
        x = cp.ones(3)  # on device 0, the current one
        with pytest.raises(ValueError, match="different from the current device"):
            kernel(x, y)
        with cp.cuda.Device(1):
            with pytest.raises(ValueError, match="different from the current device"):
                kernel(x, y)
            assert kernel(cp.ones(3), y).get().tolist() == [1.0, 1.0, 1.0]


def test_devices_check_their_id_when_used_and_are_not_hashable():
    with seam.replay(two_gpus(h100())):
        cp = seam.cupy()
        cp.cuda.Device(7)  # the constructor does not check (device.pyx)
        with pytest.raises(cp.cuda.runtime.CUDARuntimeError, match="cudaErrorInvalidDevice") as error:
            cp.cuda.Device(7).use()
        assert error.value.status == 101
        with pytest.raises(TypeError):
            hash(cp.cuda.Device(0))
        with cp.cuda.Device(1):
            on_1 = cp.ones(2)
        assert on_1.device.id == 1 and cp.cuda.Device(1).pci_bus_id == "0000:00:07.0"
        with pytest.raises(ValueError, match="Peer access is unavailable"):
            on_1 + cp.ones(2)  # current device 0, array on 1 (_kernel.pyx _check_peer_access)


def test_the_stand_in_counts_launches_and_copies_to_the_host(cp):
    standin.COUNTS.clear()
    x = cp.ones(4)
    y = (x * 2.0).sum()
    assert standin.COUNTS["to_host"] == 0 and standin.COUNTS["launches"] == 3
    float(y)
    x.get()
    assert standin.COUNTS["to_host"] == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DeprecationWarning):
            bool(cp.ones(0))


def test_a_recording_made_over_a_replay_replays_the_same_report(tmp_path):
    """Recording the replayed H100 must give back what env asked of it, call for call, with handles,
    structures, tuples and errors in the recording's own encoding."""
    from devcheck.commands.env import collect

    path = tmp_path / "again.json"
    with seam.replay(h100()):
        expected = collect(environ={}).to_dict()
        with seam.record(path, {"cupy-cuda13x": "14.2.0", "nvidia-ml-py": "13.610.43"}):
            assert "NVML_BRAND_NVIDIA" in dir(seam.nvml())
            collect(environ={})
    again_recording = Recording.load(path)
    assert {c["fn"] for c in again_recording.nvml} >= {"nvmlInit", "nvmlDeviceGetBrand", "nvmlDeviceGetPciInfo"}
    with seam.replay(again_recording):
        again = collect(environ={}).to_dict()
    (gpu,), (before,) = again["data"]["gpus"], expected["data"]["gpus"]
    assert gpu.pop("uuid")["value"] == "GPU-00000000-0000-4000-8000-000000000000"  # masked
    before.pop("uuid")
    assert gpu == before and again["verdict"] == expected["verdict"]


def _on(cp, device: int, make):
    with cp.cuda.Device(device):
        return make()


@pytest.mark.parametrize("peer", [False, True], ids=["no peer access", "peer access"])
def test_an_operand_on_another_gpu_is_refused_or_warned_as_cupy_does(peer):
    """CuPy's _check_peer_access, in every kind of kernel: operators, ufuncs, reductions, methods that
    compute, indexing that gathers, assignment, ElementwiseKernel. Views (reshape, basic slices) need no kernel."""
    from devcheck.machine.replay.standin.arrays import PerformanceWarning

    with seam.replay(n_gpus(h100(), 2, peer=peer)):
        cp = seam.cupy()
        assert cp.cuda.runtime.deviceCanAccessPeer(0, 1) == int(peer)
        on_1 = _on(cp, 1, lambda: cp.arange(6, dtype=cp.float32))
        kernel = cp.ElementwiseKernel("T x", "T y", "y = x * 2", "twice")
        uses = {
            "operator": lambda: on_1 + cp.ones(6, dtype=cp.float32),
            "inplace": lambda: cp.ones(6, dtype=cp.float32).__iadd__(on_1),
            "ufunc": lambda: cp.exp(on_1),
            "reduction": lambda: cp.sum(on_1),
            "method": lambda: on_1.sum(),
            "gather": lambda: on_1[cp.asarray([0, 1])],
            "assignment": lambda: on_1.__setitem__(0, 1.0),
            "ElementwiseKernel": lambda: kernel(on_1),
        }
        for name, use in uses.items():
            if peer:
                with pytest.warns(PerformanceWarning, match=r"\(1\) is different from the current device \(0\)\. Peer"):
                    out = use()
                assert out is None or out.device.id == 0, name  # computed on the current device
            else:
                with pytest.raises(ValueError, match=r"\(1\) .* \(0\)\. Peer access is unavailable"):
                    use()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert on_1.reshape(2, 3).device.id == 1 and on_1[1:].device.id == 1  # views: no kernel, no check
            assert _on(cp, 1, lambda: (on_1 * 2).sum()).device.id == 1
            assert cp.asarray(on_1).device.id == 0  # a copy between devices is always allowed
