"""A local SageMaker Studio sandbox on 127.0.0.1 for tests and the demo.

Nothing here is used by the admin commands in AWS. The sandbox needs the
``dev`` extra (moto in server mode, trustme, git-remote-codecommit, awscli).
"""
