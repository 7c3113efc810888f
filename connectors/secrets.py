"""Secrets Manager reads through aws-secretsmanager-caching, shared by the Netskope token and the ExternalId.

A warm Lambda container keeps one SecretCache per (region, endpoint), so its invocations read a secret once per
refresh interval (an hour by default), not once per call; each caller keeps its own dict of caches so that a test
(or a cold start) can empty one without the other.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import boto3

if TYPE_CHECKING:  # imported on the first read, not with every entry point (see connectors/netskope.py)
    from aws_secretsmanager_caching import SecretCache

CacheKey = tuple[str | None, str | None]


def new_secret_cache(client: Any) -> SecretCache:
    from aws_secretsmanager_caching import SecretCache

    return SecretCache(client=client)


def environment_cache(caches: dict[CacheKey, SecretCache], lock: threading.Lock,
                      new: Callable[[Any], SecretCache] = new_secret_cache) -> SecretCache:
    """The cache in `caches` for the environment's region and Secrets Manager endpoint, made on first use."""
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    endpoint = os.environ.get("AWS_ENDPOINT_URL_SECRETS_MANAGER") or os.environ.get("AWS_ENDPOINT_URL")
    key = (region, endpoint)
    with lock:
        cache = caches.get(key)
        if cache is None:
            cache = caches[key] = new(boto3.client("secretsmanager", region_name=region))
        return cache


def secret_text(cache: SecretCache, secret_id: str) -> str | None:
    """The secret's string, or its binary value decoded as UTF-8 (UnicodeDecodeError when it is not)."""
    text: str | None = cache.get_secret_string(secret_id)
    if text is None:
        binary = cache.get_secret_binary(secret_id)
        text = binary.decode("utf-8") if isinstance(binary, bytes | bytearray) else None
    return text
