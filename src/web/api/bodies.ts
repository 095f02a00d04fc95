/** The API's body parsers; bodies are parsed only once the caller is known, except the login form's. */
import express from "express";

export const jsonBody = express.json({ limit: "100kb", type: "application/json" });

export const csvBody = express.text({ limit: "5mb", type: "text/csv" });
