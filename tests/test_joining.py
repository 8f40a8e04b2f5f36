"""The paragraph of a multi-process job that did not form (``train.joining``), and its TCP probe."""

import socket

from resnet_jax.runtime import joining


def test_a_process_other_than_0_names_the_coordinator_when_nothing_answers_there():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        address = f"127.0.0.1:{sock.getsockname()[1]}"
        message = joining.missing_processes_message(address, 4, 2, 60)
    assert message.startswith(f"error: process 2 of 4 arrived at {address} and waited 60 s for the job to form, ")
    assert f"but process 0, the coordinator at {address}, did not arrive: nothing answers there." in message


def test_with_the_coordinator_up_another_process_is_missing():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        address = f"127.0.0.1:{sock.getsockname()[1]}"
        assert joining.coordinator_answers(address)
        message = joining.missing_processes_message(address, 4, 3, 60)
    assert f"but process 0 answers at {address}, so another of processes 1 to 3 did not arrive." in message


def test_process_0_names_process_1_of_two_and_points_to_the_logs_of_more():
    assert "but process 1 did not arrive." in joining.missing_processes_message("h:1", 2, 0, 5)
    many = joining.missing_processes_message("h:1", 8, 0, 5)
    assert "but at least one of processes 1 to 7 did not arrive; those that did say so in their own logs." in many


def test_a_job_whose_shape_jax_never_learnt_gets_the_general_paragraph():
    message = joining.missing_processes_message(None, None, None, 300)
    assert message.startswith("error: this process waited 300 s to join a multi-process job described by the cluster")
    assert "--config.join_timeout_s" in message
