"""The helper wheel that register uploads to S3, against moto's S3 in account B.

Each test creates its own bucket in account B of the session's local stack,
and its own wheel file: a few bytes named like a wheel of
git-remote-codecommit, since only the bytes and their sha256 matter here.
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any

import pytest
from iam_support import ACCOUNT_A, ACCOUNT_B, REGION, example_data

from bootstrap.aws import AwsClient, AwsOptions
from bootstrap.config import Config, parse_config
from bootstrap.errors import AwsError, BootstrapError
from bootstrap.helper_upload import (
    CONTENT_TYPE,
    DELETE,
    KEEP,
    MARKER_METADATA,
    MARKER_VALUE,
    OVERWRITE,
    SHA256_METADATA,
    UPLOAD,
    ForeignObjectError,
    plan_removal,
    plan_upload,
    s3_client,
    wheel_sha256,
)
from bootstrap.sandbox.helper_wheel import minimal_wheel
from bootstrap.sandbox.stack import LocalStack

WHEEL_NAME = "git_remote_codecommit-1.17-py3-none-any.whl"
KEY = f"studio-bootstrap/{WHEEL_NAME}"


def new_bucket(stack: LocalStack, account: str = ACCOUNT_B) -> str:
    name = f"helper-{uuid.uuid4().hex[:16]}"
    client = stack.session(account).client("s3", region_name=REGION)
    client.create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    return name


def write_wheel(folder: Path, content: bytes = b"wheel version one") -> Path:
    return minimal_wheel(folder, extra=content)


def helper_config(
    wheel: Path, bucket: str, domain_id: str = "d-xxxxxxxxxxxx", **helper: Any
) -> Config:
    data = example_data()
    data["domain"]["id"] = domain_id
    data["helper"] = {
        "sources": ["s3", "pypi"],
        "wheel": str(wheel),
        "bucket": bucket,
        **helper,
    }
    return parse_config(data)


def s3_of(stack: LocalStack, account: str = ACCOUNT_B) -> AwsClient:
    return AwsClient(stack.session(account), "s3", REGION, stack.endpoint_url)


def read_object(stack: LocalStack, bucket: str, key: str = KEY) -> dict[str, Any]:
    client = stack.session(ACCOUNT_B).client("s3", region_name=REGION)
    response = client.get_object(Bucket=bucket, Key=key)
    return {
        "body": response["Body"].read(),
        "metadata": response["Metadata"],
        "content_type": response["ContentType"],
    }


def object_exists(stack: LocalStack, bucket: str, key: str = KEY) -> bool:
    client = stack.session(ACCOUNT_B).client("s3", region_name=REGION)
    listed = client.list_objects_v2(Bucket=bucket, Prefix=key)
    return any(item["Key"] == key for item in listed.get("Contents", []))


def put_foreign(stack: LocalStack, bucket: str, **metadata: str) -> None:
    client = stack.session(ACCOUNT_B).client("s3", region_name=REGION)
    client.put_object(Bucket=bucket, Key=KEY, Body=b"someone else's", Metadata=metadata)


# --- upload -------------------------------------------------------------------


def test_upload_new_wheel(local_stack: LocalStack, tmp_path: Path) -> None:
    wheel = write_wheel(tmp_path)
    bucket = new_bucket(local_stack)
    s3 = s3_of(local_stack)
    plan = plan_upload(s3, helper_config(wheel, bucket))
    assert plan is not None
    assert plan.action == UPLOAD
    assert plan.mutating
    assert plan.as_dict()["target"] == f"s3://{bucket}/{KEY}"
    assert WHEEL_NAME in plan.as_dict()["detail"]
    assert s3.counter.mutating == []

    line = plan.apply(s3)

    assert line.startswith(f"uploaded s3://{bucket}/{KEY}")
    assert s3.counter.mutating == ["PutObject"]
    stored = read_object(local_stack, bucket)
    assert stored["body"] == wheel.read_bytes()
    assert stored["content_type"] == CONTENT_TYPE
    sha256 = hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert stored["metadata"][SHA256_METADATA] == sha256
    assert stored["metadata"][MARKER_METADATA] == MARKER_VALUE
    assert wheel_sha256(wheel) == sha256


def test_second_run_no_mutating_call(local_stack: LocalStack, tmp_path: Path) -> None:
    config = helper_config(write_wheel(tmp_path), new_bucket(local_stack))
    first = plan_upload(s3_of(local_stack), config)
    assert first is not None
    first.apply(s3_of(local_stack))

    s3 = s3_of(local_stack)
    second = plan_upload(s3, config)
    assert second is not None
    assert second.action == KEEP
    assert not second.mutating
    second.apply(s3)
    assert s3.counter.mutating == []
    assert s3.counter.reading == ["HeadObject"]


def test_changed_wheel_overwrites_ours(local_stack: LocalStack, tmp_path: Path) -> None:
    wheel = write_wheel(tmp_path)
    bucket = new_bucket(local_stack)
    config = helper_config(wheel, bucket)
    first = plan_upload(s3_of(local_stack), config)
    assert first is not None
    first.apply(s3_of(local_stack))
    old_sha256 = wheel_sha256(wheel)

    write_wheel(tmp_path, b"wheel version two")
    s3 = s3_of(local_stack)
    plan = plan_upload(s3, config)
    assert plan is not None
    assert plan.action == OVERWRITE
    assert old_sha256[:12] in plan.detail
    plan.apply(s3)

    stored = read_object(local_stack, bucket)
    assert stored["body"] == wheel.read_bytes()
    assert stored["metadata"][SHA256_METADATA] == wheel_sha256(wheel)
    assert s3.counter.mutating == ["PutObject"]


@pytest.mark.parametrize(
    "metadata",
    [{}, {MARKER_METADATA: "another-tool"}, {SHA256_METADATA: "0" * 64}],
    ids=["no-metadata", "other-marker", "sha256-without-marker"],
)
def test_foreign_object_rejected(
    local_stack: LocalStack, tmp_path: Path, metadata: dict[str, str]
) -> None:
    bucket = new_bucket(local_stack)
    put_foreign(local_stack, bucket, **metadata)
    s3 = s3_of(local_stack)

    with pytest.raises(ForeignObjectError) as caught:
        plan_upload(s3, helper_config(write_wheel(tmp_path), bucket))

    message = str(caught.value)
    assert f"s3://{bucket}/{KEY}" in message
    assert "will not overwrite" in message
    assert "\n" not in message
    assert s3.counter.mutating == []
    assert read_object(local_stack, bucket)["body"] == b"someone else's"


def test_object_created_after_plan_kept(
    local_stack: LocalStack, tmp_path: Path
) -> None:
    bucket = new_bucket(local_stack)
    s3 = s3_of(local_stack)
    plan = plan_upload(s3, helper_config(write_wheel(tmp_path), bucket))
    assert plan is not None
    put_foreign(local_stack, bucket)

    with pytest.raises(AwsError) as caught:
        plan.apply(s3)

    assert caught.value.code == "PreconditionFailed"
    assert "run the command again" in str(caught.value)
    assert read_object(local_stack, bucket)["body"] == b"someone else's"


def test_shared_location_uploaded_once(local_stack: LocalStack, tmp_path: Path) -> None:
    wheel = write_wheel(tmp_path)
    bucket = new_bucket(local_stack)
    s3 = s3_of(local_stack)
    first = plan_upload(s3, helper_config(wheel, bucket))
    second = plan_upload(s3, helper_config(wheel, bucket, domain_id="d-yyyyyyyyyyyy"))
    assert first is not None
    assert second is not None
    first.apply(s3)

    line = second.apply(s3)

    assert line == f"kept s3://{bucket}/{KEY} (it already contains this wheel)"
    assert s3.counter.mutating == ["PutObject", "PutObject"]
    assert read_object(local_stack, bucket)["body"] == wheel.read_bytes()


def test_wheel_changed_after_plan(local_stack: LocalStack, tmp_path: Path) -> None:
    wheel = write_wheel(tmp_path)
    bucket = new_bucket(local_stack)
    s3 = s3_of(local_stack)
    plan = plan_upload(s3, helper_config(wheel, bucket))
    assert plan is not None
    write_wheel(tmp_path, b"edited in between")

    with pytest.raises(BootstrapError, match="changed after the plan"):
        plan.apply(s3)

    assert s3.counter.mutating == []
    assert not object_exists(local_stack, bucket)


def test_client_uses_bucket_region(
    local_stack: LocalStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in local_stack.admin_credentials(ACCOUNT_B).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(local_stack.root / "aws-config"))
    monkeypatch.setenv(
        "AWS_SHARED_CREDENTIALS_FILE", str(local_stack.root / "aws-config")
    )
    bucket = new_bucket(local_stack)
    config = helper_config(write_wheel(tmp_path), bucket, bucket_region="eu-central-1")
    options = AwsOptions(region="us-east-1", endpoint_url=local_stack.endpoint_url)

    s3 = s3_client(options, config)

    assert s3 is not None
    assert s3.region == "eu-central-1"
    plan = plan_upload(s3, config)
    assert plan is not None
    assert plan.action == UPLOAD


def test_no_s3_source_no_plan(local_stack: LocalStack) -> None:
    data = example_data()
    data["helper"] = {"sources": ["pypi"]}
    config = parse_config(data)
    s3 = s3_of(local_stack)
    assert plan_upload(s3, config) is None
    assert plan_removal(s3, config) is None
    assert s3_client(AwsOptions(), config) is None
    assert s3.counter.calls == []


# --- unregister -----------------------------------------------------------------


def test_unregister_deletes_ours(local_stack: LocalStack, tmp_path: Path) -> None:
    bucket = new_bucket(local_stack)
    config = helper_config(write_wheel(tmp_path), bucket)
    upload = plan_upload(s3_of(local_stack), config)
    assert upload is not None
    upload.apply(s3_of(local_stack))

    s3 = s3_of(local_stack)
    plan = plan_removal(s3, config)
    assert plan is not None
    assert plan.action == DELETE
    assert "uploaded by studio-bootstrap" in plan.detail
    line = plan.apply(s3)

    assert line == f"deleted s3://{bucket}/{KEY}, which studio-bootstrap uploaded"
    assert s3.counter.mutating == ["DeleteObject"]
    assert not object_exists(local_stack, bucket)


def test_unregister_keeps_foreign(local_stack: LocalStack, tmp_path: Path) -> None:
    bucket = new_bucket(local_stack)
    put_foreign(local_stack, bucket, **{SHA256_METADATA: "0" * 64})
    s3 = s3_of(local_stack)

    plan = plan_removal(s3, helper_config(write_wheel(tmp_path), bucket))
    assert plan is not None
    assert plan.action == KEEP
    assert "not uploaded by studio-bootstrap" in plan.detail
    plan.apply(s3)

    assert s3.counter.mutating == []
    assert read_object(local_stack, bucket)["body"] == b"someone else's"


def test_unregister_without_object(local_stack: LocalStack, tmp_path: Path) -> None:
    bucket = new_bucket(local_stack)
    s3 = s3_of(local_stack)
    plan = plan_removal(s3, helper_config(write_wheel(tmp_path), bucket))
    assert plan is not None
    assert plan.action == KEEP
    assert plan.detail == "no object"
    assert s3.counter.mutating == []


def test_unregister_keeps_shared_wheel(local_stack: LocalStack, tmp_path: Path) -> None:
    wheel = write_wheel(tmp_path)
    bucket = new_bucket(local_stack)
    config = helper_config(wheel, bucket)
    other = helper_config(wheel, bucket, domain_id="d-yyyyyyyyyyyy")
    upload = plan_upload(s3_of(local_stack), config)
    assert upload is not None
    upload.apply(s3_of(local_stack))

    s3 = s3_of(local_stack)
    plan = plan_removal(s3, config, [config, other])
    assert plan is not None
    assert plan.action == KEEP
    assert "d-yyyyyyyyyyyy" in plan.detail
    assert s3.counter.calls == []
    assert object_exists(local_stack, bucket)


# --- errors ---------------------------------------------------------------------


def test_missing_bucket_message(local_stack: LocalStack, tmp_path: Path) -> None:
    bucket = f"missing-{uuid.uuid4().hex[:16]}"
    s3 = s3_of(local_stack)
    with pytest.raises(AwsError) as caught:
        plan_upload(s3, helper_config(write_wheel(tmp_path), bucket))

    message = str(caught.value)
    assert caught.value.code == "NoSuchBucket"
    assert f"s3://{bucket}/{KEY}" in message
    assert f"bucket {bucket} does not exist" in message
    assert "set helper.bucket" in message
    assert "\n" not in message
    assert s3.counter.mutating == []


def test_access_denied_on_read(
    local_stack: LocalStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # moto's S3 does not evaluate IAM in the local stack, but it denies
    # access to another account's bucket when cross-account access is off:
    # HeadObject then fails with a bare 403, as S3 returns for a denied HEAD.
    bucket = new_bucket(local_stack, ACCOUNT_A)
    monkeypatch.setenv("MOTO_S3_ALLOW_CROSSACCOUNT_ACCESS", "false")
    s3 = s3_of(local_stack)

    with pytest.raises(AwsError) as caught:
        plan_upload(s3, helper_config(write_wheel(tmp_path), bucket))

    message = str(caught.value)
    assert caught.value.operation == "HeadObject"
    assert caught.value.code == "AccessDenied"
    assert f"bucket {bucket}, key {KEY}" in message
    assert "s3:ListBucket" in message
    assert "register-admin policy" in message
    assert "\n" not in message
    assert isinstance(caught.value.__cause__, AwsError)
    assert caught.value.__cause__.code == "403"


def test_access_denied_on_upload(
    local_stack: LocalStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = new_bucket(local_stack, ACCOUNT_A)
    s3 = s3_of(local_stack)
    plan = plan_upload(s3, helper_config(write_wheel(tmp_path), bucket))
    assert plan is not None
    monkeypatch.setenv("MOTO_S3_ALLOW_CROSSACCOUNT_ACCESS", "false")

    with pytest.raises(AwsError) as caught:
        plan.apply(s3)

    message = str(caught.value)
    assert caught.value.operation == "PutObject"
    assert caught.value.code == "AccessDenied"
    assert f"bucket {bucket}, key {KEY}" in message
    assert "s3:PutObject" in message
    assert "\n" not in message
