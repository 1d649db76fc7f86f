from __future__ import annotations

import pytest

from trivsel.samples import survey as samples


@pytest.fixture(scope="module")
def survey_inbox(tmp_path_factory):
    inbox = tmp_path_factory.mktemp("inbox")
    samples.generate(inbox)
    return inbox
