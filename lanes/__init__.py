"""llm-lanes: what application code imports.

    from lanes import LLMTask, enqueue
    handle = enqueue(LLMTask(messages=[{"role": "user", "content": "Hi"}]))
    print(handle.result(timeout=30)["text"])

Pure: importing `lanes` pulls in no Celery, SQL driver or network client.
"""

from lanes.errors import (
    JobFailedError,
    JobNotFoundError,
    LanesError,
    PublishError,
    ResultTimeoutError,
    SettingsError,
    TaskValidationError,
)
from lanes.ports import JobState
from lanes.producer import JobHandle, enqueue, enqueue_many, get_job
from lanes.task import Lane, LLMTask, Message

__all__ = [
    "JobFailedError",
    "JobHandle",
    "JobNotFoundError",
    "JobState",
    "LLMTask",
    "Lane",
    "LanesError",
    "Message",
    "PublishError",
    "ResultTimeoutError",
    "SettingsError",
    "TaskValidationError",
    "enqueue",
    "enqueue_many",
    "get_job",
]
