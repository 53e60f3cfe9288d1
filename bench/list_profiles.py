"""List and describe every user profile of a domain, as ``register`` reads them.

The reference time of the control-plane benchmark: the same client settings
as ``bootstrap.aws.SageMaker`` (standard retries, 8 attempts) and the same
pool of 8 threads for DescribeUserProfile. Credentials and the endpoint come
from the environment and ``--endpoint-url``.

    python -m bench.list_profiles --endpoint-url URL --domain-id ID
"""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config

from bootstrap.register import PARALLEL_CALLS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--endpoint-url", required=True)
    parser.add_argument("--domain-id", required=True)
    parser.add_argument("--region", default="eu-west-1")
    arguments = parser.parse_args()

    config = Config(retries={"mode": "standard", "max_attempts": 8})
    client = boto3.Session().client(
        "sagemaker",
        region_name=arguments.region,
        endpoint_url=arguments.endpoint_url,
        config=config,
    )
    names = [
        profile["UserProfileName"]
        for page in client.get_paginator("list_user_profiles").paginate(
            DomainIdEquals=arguments.domain_id
        )
        for profile in page["UserProfiles"]
    ]

    def describe(name: str) -> None:
        client.describe_user_profile(DomainId=arguments.domain_id, UserProfileName=name)

    with ThreadPoolExecutor(PARALLEL_CALLS) as pool:
        list(pool.map(describe, names))
    print(f"described {len(names)} user profiles")


if __name__ == "__main__":
    main()
