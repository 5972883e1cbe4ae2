"""The task runners' plain parts: the shape of the local Dask cluster a build starts."""

import pytest


def test_a_local_clusters_shape_covers_max_workers_with_processes_up_to_the_cores(monkeypatch):
    dask_system = pytest.importorskip("dask.system", reason="dask not installed (pip install 'spechestra[dask]')")

    from spechestra.orchestration.runners import local_dask_shape
    for cores in (1, 2, 3, 16):
        monkeypatch.setattr(dask_system, "CPU_COUNT", cores)
        for wanted in (1, 2, 3, 4, 5, 8, 32):
            shape = local_dask_shape(wanted)
            processes, threads = shape["n_workers"], shape["threads_per_worker"]
            assert 1 <= processes <= min(wanted, cores), (cores, wanted, shape)
            assert processes == min(wanted, cores) and processes * threads >= wanted > processes * (threads - 1), \
                (cores, wanted, shape)
