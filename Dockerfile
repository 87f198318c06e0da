# Aura: a static binary on a distroless base.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/aura ./cmd/aura

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/aura /usr/local/bin/aura
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/aura"]
CMD ["serve"]
