# Stage 1: build a wheel of the bot and its dependencies.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY cogs ./cogs
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# Stage 2: only the installed wheels, run as an unprivileged user.
FROM python:3.11-slim
RUN useradd --create-home --uid 10001 imagine
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER imagine
WORKDIR /home/imagine
# data/ holds the SQLite queue and the images; mount a config.toml here to change settings
# (set [webhook] listen_host = "0.0.0.0" so callbacks can reach the container).
VOLUME ["/home/imagine/data"]
EXPOSE 8080
ENTRYPOINT ["imagine-bot"]
CMD ["run"]
