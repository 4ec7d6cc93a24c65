"""Install deepgaze1-repro.

The runtime stack is pinned: Theano 1.0.5 imports only with numpy 1.23.5 and
scipy < 1.12. ``environment.yml`` lists the same pins for conda users
(``tests/test_packaging.py`` checks that the two agree).
"""
from setuptools import find_packages, setup

INSTALL_REQUIRES = [
    "numpy==1.23.5",
    "scipy==1.11.4",
    # OpenBLAS for Theano's C ops (repro/backend.py): numpy 1.23.5's own is too old for recent CPUs.
    "scipy-openblas32==0.3.34.481.3",
    "Theano==1.0.5",
    "scikit-image==0.24.0",
    "h5py==3.16.0",
    "matplotlib==3.10.9",
    "pillow==13.0.0",
    "protobuf==7.36.2",
    "tqdm==4.70.1",
]

EXTRAS_REQUIRE = {
    # opencv (the contrib build) is an independent Caffe implementation and spectral residual saliency model the
    # tests compare against;
    # nbformat, nbclient and ipykernel execute the notebooks headlessly (tests/test_notebooks.py).
    "test": ["pytest==9.2.0", "opencv-contrib-python-headless==4.10.0.84",
             "nbformat==5.11.1", "nbclient==0.11.0", "ipykernel==7.4.0"],
    # experiments run their grids of model fits through dask.distributed.
    "dask": ["dask[distributed]==2026.8.0"],
    # repro.interop: DeepGaze I as a pysaliency model. pysaliency imports torch (the CPU build) and
    # pkg_resources, which setuptools 81 removed.
    "interop": ["pysaliency==0.2.22", "torch==2.13.0", "setuptools==80.10.2"],
}

setup(
    name="deepgaze1-repro",
    version="0.1.0",
    description="A runnable reproduction of DeepGaze I (Kümmerer, Theis & Bethge, ICLR 2015 workshop)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["repro", "repro.*"]),
    package_data={"repro": ["manifests/*.sha256"]},          # SHA-256 of the official dataset files
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    entry_points={"console_scripts": ["deepgaze1-repro=repro.__main__:main"]},
)
