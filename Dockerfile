# syntax=docker/dockerfile:1

# Build a static binary.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=devel
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/latch ./cmd/latch \
 && mkdir -p /out/data

# Run it as an unprivileged user on a minimal image.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/latch /usr/local/bin/latch
# The store lives on a volume owned by the nonroot user (65532).
COPY --from=build --chown=65532:65532 /out/data /var/lib/latch
VOLUME ["/var/lib/latch"]
ENV LATCH_STORE_PATH=/var/lib/latch/latch.db \
    LATCH_ADMIN_LISTEN=0.0.0.0:8089
EXPOSE 8089
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/latch"]
CMD ["serve", "--config", "/etc/latch/config.yaml"]
