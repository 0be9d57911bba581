"""Talking to the IOC as the tests do: a stand-in for edge nodes publishing batches over MQTT, the
batches of positions they send, and a client of the web API.

Example: ``node = Node(broker); node.send(position_batch("vessel-042", 1, 3)); node.acks("vessel-042")``
"""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt
import requests
from helpers import wait_for
from paho.mqtt.enums import CallbackAPIVersion

from ioc.broker import PrivateBroker
from sync.records import Position, TimeSource
from sync.wire import Ack, Batch, ack_topic, decode_ack, encode_batch, up_topic

PREFIX = "ioc/v1"
EPOCH = "a1b2c3d4e5f60718"
T0 = 1_700_000_000_000


def positions(start: int, n: int) -> list[Position]:
    """``n`` positions, their values already at wire resolution so that they come back equal."""
    return [
        Position(
            T0 + i * 1000,
            int(TimeSource.GPS),
            T0 + i * 1000 + 3,
            round(16.05 + i * 1e-5, 7),
            round(108.2 + i * 1e-5, 7),
            7.5,
            45.0,
            1,
            9,
            0.9,
        )
        for i in range(start, start + n)
    ]


def position_batch(device: str, first_seq: int, n: int, epoch: str = EPOCH) -> Batch:
    """``device``'s batch of :func:`positions` ``first_seq`` .. ``first_seq + n - 1``, seqs the same."""
    return Batch(device, epoch, "position", list(range(first_seq, first_seq + n)), positions(first_seq, n))


class Node:
    """A raw paho client standing in for edge nodes: publishes at QoS 1 and collects every ack.

    Example: ``node.send(position_batch("vessel-042", 1, 3))`` then ``node.acks("vessel-042")``
    """

    def __init__(self, broker: PrivateBroker, client_id: str = "test-nodes") -> None:
        self._lock = threading.Lock()
        self._acks: list[tuple[str, Ack]] = []
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.max_inflight_messages_set(200)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self.client.subscribe(f"{PREFIX}/+/ack", qos=1)
        wait_for(subscribed.is_set, what="the ack subscription")

    def _on_message(self, client, userdata, message) -> None:
        ack = decode_ack(message.payload)
        with self._lock:
            self._acks.append((message.topic, ack))

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def send(self, batch: Batch, compression: str = "zstd") -> None:
        self.publish(up_topic(PREFIX, batch.device, batch.stream), encode_batch(batch, compression))

    def acks(self, device: str) -> list[Ack]:
        with self._lock:
            return [ack for topic, ack in self._acks if topic == ack_topic(PREFIX, device)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Api:
    """GETs from the web API with a user's API token.

    Example: ``Api(web_server.url, token).json("/api/v1/positions", device="vessel-1")["items"]``
    """

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"

    def get(self, path: str, **params: object) -> requests.Response:
        return self.http.get(self.url + path, params=params, timeout=30)

    def json(self, path: str, **params: object) -> dict:
        response = self.get(path, **params)
        assert response.status_code == 200, response.text
        return response.json()

    def close(self) -> None:
        self.http.close()
