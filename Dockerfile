FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY lanes ./lanes
COPY workers ./workers
COPY storage ./storage
RUN pip install --no-cache-dir ".[postgres]" && useradd --create-home lanes
USER lanes
CMD ["llm-lanes", "--help"]
