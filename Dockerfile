# One image for every crmflow role; docker-compose.yml picks the command.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY crmflow ./crmflow
COPY receiver ./receiver
COPY workers ./workers
COPY sandbox ./sandbox
RUN pip install --no-cache-dir . && useradd --system --uid 10001 crmflow
COPY rules ./rules
USER crmflow
ENTRYPOINT ["crmflow"]
