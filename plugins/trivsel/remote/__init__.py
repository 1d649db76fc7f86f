"""Pulling deliveries from where municipalities publish them (sftp://, https://, s3://, file://) into the inbox.

See docs/remote-locations.md; the step itself is trivsel.remote.pull.pull_municipality.
"""
