"""The stand-in refuses what CuPy 14.2 refuses, found by an audit against CuPy's source: each test
quotes CuPy's file and its message (checked where possible against the real cupy, which parses an
ElementwiseKernel's arguments and a creation function's keywords before it needs a GPU)."""

import numpy
import pytest

from devcheck.machine.replay import seam, standin
from tests.recordings import h100


@pytest.fixture
def cp():
    with seam.replay(h100()):
        yield seam.cupy()


def test_a_0d_numpy_array_is_no_operand(cp):
    """_scalar.pyx CScalar takes Python and NumPy scalars only: a 0-d numpy.ndarray is not one."""
    x, host = cp.ones(3), numpy.array(2.0)
    kernel = cp.ElementwiseKernel("T x, T a", "T y", "y = a * x", "scale")
    uses = (lambda: x + host, lambda: host * x, lambda: cp.add(x, host), lambda: kernel(x, host))
    for use in (*uses, lambda: cp.where(x > 1, x, host)):
        with pytest.raises(TypeError, match="Unsupported type <class 'numpy.ndarray'>"):
            use()
    with pytest.raises(TypeError, match="Unsupported type"):
        x += host
    assert (x + host[()]).get().tolist() == [3.0, 3.0, 3.0]  # its scalar is fine
    x[:] = numpy.array(5.0)  # fill takes a 0-d host array (core.pyx fill)
    assert x.get().tolist() == [5.0, 5.0, 5.0]


def test_elementwise_kernel_keywords_and_names(cp):
    """_kernel.pyx ElementwiseKernel: size, stream and block_size only; a C identifier as name; no `i`."""
    kernel = cp.ElementwiseKernel("T x", "T y", "y = x + 1", "inc")
    x = cp.zeros(2)
    with pytest.raises(TypeError, match=r"^Wrong arguments \{'foo': 1\}$"):
        kernel(x, foo=1)
    with pytest.raises(ValueError, match="^block_size must be greater than zero$"):
        kernel(x, block_size=0)
    assert kernel(x, block_size=64, stream=cp.cuda.get_current_stream()).get().tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="^Specified 'size' can be used only if all of the ndarray are 'raw'.$"):
        kernel(x, size=2)
    with pytest.raises(ValueError, match='^Invalid kernel name: "bad name"$'):
        cp.ElementwiseKernel("T x", "T y", "y = x", "bad name")
    with pytest.raises(ValueError, match="^Can not use 'i' as a parameter name$"):
        cp.ElementwiseKernel("T i", "T y", "y = i", "k")
    with pytest.raises(Exception, match='^Unknown keyword "const"$'):
        cp.ElementwiseKernel("const T x", "T y", "y = x", "k")


def test_raw_parameters_are_not_broadcast(cp):
    """_broadcast: raw arrays take no part in the loop's shape; the kernel indexes them with `i`."""
    table = cp.arange(10.0)
    pick = cp.ElementwiseKernel("raw T table, int64 j", "T y", "y = table[j]", "pick")
    assert pick(table, cp.asarray([3, 1])).get().tolist() == [3.0, 1.0]
    shift = cp.ElementwiseKernel("raw T x", "T y", "y = x[i + 1]", "shift")
    with pytest.raises(ValueError, match="^Loop size is undecided.$"):
        shift(table)
    assert shift(table, cp.empty(4)).get().tolist() == [1.0, 2.0, 3.0, 4.0]  # the loop's shape: the output's
    fill = cp.ElementwiseKernel("float64 v", "raw float64 y", "y[i] = v", "fill_raw")
    with pytest.raises(ValueError, match="^Output array size is Undecided$"):
        fill(cp.ones(3))  # a raw output is made only with `size`
    assert fill(1.0, size=3).get().tolist() == [1.0, 1.0, 1.0]
    target = cp.zeros(5)
    fill(2.0, target, size=3)
    assert target.get().tolist() == [2.0, 2.0, 2.0, 0.0, 0.0]


def test_outputs_are_broadcast_with_the_inputs(cp):
    """_kernel.pyx: inputs and outputs broadcast together; a given output of another shape is refused."""
    kernel = cp.ElementwiseKernel("T x", "T p", "p = p + x", "acc")
    p = cp.zeros((2, 3))
    with pytest.raises(ValueError, match="^Out shape is mismatched$"):
        kernel(cp.ones((1, 2, 3)), p)  # the stand-in once wrote a (1, 2, 3) result into p
    with pytest.raises(ValueError, match=r"operands could not be broadcast together with shapes \(4, 3\) \(2, 3\)"):
        kernel(cp.ones((4, 3)), p)
    kernel(cp.ones(3), p)  # an input broadcast to the output's shape
    assert p.get().tolist() == [[1.0] * 3] * 2
    with pytest.raises(TypeError, match="^Output arguments type must be cupy.ndarray$"):
        kernel(cp.ones(3), 1.0)


def test_placeholders_bind_from_the_outputs_first(cp):
    """_decide_params_type_core: the outputs bind T first, so the input is the one that mismatches."""
    kernel = cp.ElementwiseKernel("T x", "T y", "y = x", "copy")
    with pytest.raises(TypeError, match="^Type is mismatched. x float32 float64 T$"):
        kernel(cp.ones(2, dtype=cp.float32), cp.zeros(2))
    fixed = cp.ElementwiseKernel("float32 x", "float32 y", "y = x", "copy32")
    with pytest.raises(TypeError, match="^Type is mismatched. y float64 float32$"):
        fixed(cp.ones(2, dtype=cp.float32), cp.zeros(2))
    unbound = cp.ElementwiseKernel("T x, U a", "U y", "y = a", "unbound")
    with pytest.raises(KeyError):
        unbound(cp.ones(2), 1.0)  # U bound by nothing (a scalar binds no type): in_types = type_dict[p.ctype]


def test_ufunc_at_dtypes_and_messages(cp):
    """_routines_indexing.pyx _scatter_op_single: TypeError for a dtype without an atomic."""
    index = cp.asarray([0])
    cases = [
        ("add", "int8", "cupy.add.at only supports int32, int64, float16, float32, float64, uint32, uint64"),
        ("subtract", "float32", "cupy.subtract.at only supports int32, uint32, as data type"),
        ("maximum", "float16", "cupy.maximum.at only supports int32, int64, float32, float64, uint32, uint64"),
        ("minimum", "float16", "cupy.minimum.at only supports int32, int64, float32, float64, uint32, uint64"),
        ("bitwise_or", "int8", "cupy.bitwise_or.at only supports int32, int64, uint32, uint64 as data type"),
    ]
    for name, dtype, message in cases:
        with pytest.raises(TypeError, match=message):
            getattr(cp, name).at(cp.zeros(3, dtype=dtype), index, 1)
    x = cp.zeros(3, dtype=cp.int32)
    cp.subtract.at(x, cp.asarray([0, 0]), 1)
    assert x.get().tolist() == [-2, 0, 0]
    with pytest.raises(NotImplementedError, match="^`cupy_multiply.at` is not supported yet$"):
        cp.multiply.at(x, index, 2)


def test_reduce_writes_out_take_wraps_and_creation_refuses_device(cp):
    out = cp.zeros(2)
    assert cp.add.reduce(cp.ones((3, 2)), axis=0, out=out) is out  # _kernel.pyx: array.sum(axis, dtype, out)
    assert out.get().tolist() == [3.0, 3.0]
    with pytest.raises(NotImplementedError, match="^`cupy_maximum.reduce` is not supported yet$"):
        cp.maximum.reduce(out)
    x = cp.arange(4.0)
    assert cp.take(x, cp.asarray([5, -1])).get().tolist() == [1.0, 3.0]  # _take_kernel_core: indices % range
    assert x.take(6).get().tolist() == 2.0 and x.take(cp.asarray([4]), axis=0).get().tolist() == [0.0]
    for make in (
        lambda: cp.zeros(3, device=None),
        lambda: cp.arange(3, device=None),
        lambda: cp.asarray([1], device=None),
    ):
        with pytest.raises(TypeError, match="got an unexpected keyword argument 'device'"):
            make()


def test_data_dependent_shapes_copy_to_the_host_and_empty_launches_nothing(cp):
    """A boolean mask, nonzero and unique read a count back from the device (a synchronisation);
    repr copies the array out; cupy.empty allocates without a kernel."""
    x = cp.arange(4.0)
    mask = x > 1.0
    for use in (lambda: x[mask], lambda: cp.nonzero(x), lambda: x.nonzero(), lambda: cp.unique(x), lambda: repr(x)):
        standin.COUNTS.clear()
        use()
        assert standin.COUNTS["to_host"] >= 1, use
    standin.COUNTS.clear()
    x[mask] = 0.0
    assert standin.COUNTS["to_host"] == 1 and x.get().tolist() == [0.0, 1.0, 0.0, 0.0]
    standin.COUNTS.clear()
    cp.add.at(x, mask, 1.0)  # _scatter_op_mask_single sizes its work by the mask's count too
    assert standin.COUNTS["to_host"] == 1 and x.get().tolist() == [0.0, 1.0, 1.0, 1.0]
    standin.COUNTS.clear()
    cp.empty(3), cp.empty_like(x), cp.ndarray((2,))
    assert standin.COUNTS["launches"] == 0 and standin.COUNTS["to_host"] == 0


def test_ufunc_outputs_are_device_arrays_of_the_broadcast_shape(cp):
    """_kernel.pyx ufunc.__call__: outputs take part in the broadcast and must have its shape."""
    y = cp.zeros((2, 3))
    assert cp.add(cp.ones(3), 1.0, out=y) is y and y.get().tolist() == [[2.0] * 3] * 2
    with pytest.raises(ValueError, match="^Out shape is mismatched$"):
        cp.add(cp.ones((1, 2, 3)), 1.0, out=y)  # NumPy says "non-broadcastable output operand"
    with pytest.raises(
        ValueError, match=r"^operands could not be broadcast together with shapes \(4,\) \(\) \(2, 3\)$"
    ):
        cp.add(cp.ones(4), 1.0, out=y)
    for host in (numpy.zeros(3), numpy.array(0.0)):
        with pytest.raises(TypeError, match="Unsupported type <class 'numpy.ndarray'>"):
            cp.add(cp.ones(3), 1.0, out=host)
    with pytest.raises(ValueError, match="Cannot specify 'out' as both a positional and keyword argument"):
        cp.add(cp.ones(3), 1.0, y, out=y)
