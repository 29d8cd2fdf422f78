# Headrace image. `docker build -t headrace .` then
# `docker run -p 8080:8080 -e HEADRACE_HOST=0.0.0.0 headrace`.
FROM python:3.11-slim

ARG EXTRAS=""
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    HEADRACE_HOST=0.0.0.0 HEADRACE_PORT=8080 HEADRACE_DATA_DIR=/data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY engine engine
COPY connectors connectors
COPY api api
COPY ui ui
COPY migrations migrations
RUN pip install --no-cache-dir ".${EXTRAS}"
# The mock LLM upstream and hurl suites are used by docker-compose.test.yml.
COPY tests tests
COPY hurl hurl

VOLUME /data
EXPOSE 8080
CMD ["headrace", "serve"]
