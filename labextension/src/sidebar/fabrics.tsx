/**
 * The project's fabrics: list, add, edit, delete and test their connection.
 */
import * as React from 'react';

import {
  addIcon,
  deleteIcon,
  editIcon,
  refreshIcon,
  runIcon
} from '@jupyterlab/ui-components';

import * as api from '../api';
import { IFabric, IFabricTest } from '../types';
import {
  IconButton,
  Note,
  Section,
  confirmAction,
  errorMessage,
  reportError,
  useLoader
} from './common';
import { FabricForm } from './fabricForm';
import { BUILT_IN_FABRIC, IFabricDraft, draftOf } from './fabricDraft';

type TestState =
  | { state: 'testing' }
  | { state: 'done'; result: IFabricTest }
  | { state: 'failed'; message: string };

export interface IFabricsSectionProps {
  project: string;
  generation: string;
  /** The fabric previews and runs use when none is named. */
  defaultFabric: string;
}

function TestResult(props: { test: TestState }): React.ReactElement {
  const { test } = props;
  if (test.state === 'testing') {
    return (
      <div
        className="jp-Prophecy-testResult"
        data-testid="prophecy-fabric-test-result"
        data-state="testing"
      >
        Testing the connection…
      </div>
    );
  }
  const ok = test.state === 'done' && test.result.ok;
  const text =
    test.state === 'done'
      ? `${test.result.ok ? 'Connected' : 'Failed'}: ${test.result.message} (${test.result.seconds.toFixed(2)} s)`
      : `Failed: ${test.message}`;
  return (
    <div
      className={`jp-Prophecy-testResult ${ok ? 'jp-Prophecy-ok' : 'jp-Prophecy-failed'}`}
      data-testid="prophecy-fabric-test-result"
      data-state={ok ? 'ok' : 'failed'}
    >
      {text}
    </div>
  );
}

function FabricItem(props: {
  fabric: IFabric;
  isDefault: boolean;
  test: TestState | undefined;
  onTest: () => void;
  onEdit: () => void;
  onDelete: () => void;
}): React.ReactElement {
  const { fabric, isDefault, test } = props;
  const builtIn = fabric.name === BUILT_IN_FABRIC;
  return (
    <li
      className="jp-Prophecy-item jp-Prophecy-fabricItem"
      data-testid="prophecy-fabric-item"
      data-name={fabric.name}
      data-default={isDefault}
      title={fabric.description || undefined}
    >
      <div className="jp-Prophecy-fabricLine">
        <span className="jp-Prophecy-itemName">{fabric.name}</span>
        <span
          className="jp-Prophecy-fabricKind"
          data-testid="prophecy-fabric-kind-label"
        >
          {fabric.kind}
        </span>
        {isDefault ? (
          <span
            className="jp-Prophecy-badge"
            data-testid="prophecy-fabric-default"
            title="Previews and runs use this fabric unless told otherwise"
          >
            default
          </span>
        ) : null}
        <span className="jp-Prophecy-itemActions">
          <IconButton
            icon={runIcon}
            title={`Test the connection of ${fabric.name}`}
            testId="prophecy-fabric-test"
            disabled={test?.state === 'testing'}
            onClick={props.onTest}
          />
          {builtIn ? null : (
            <>
              <IconButton
                icon={editIcon}
                title={`Edit ${fabric.name}`}
                testId="prophecy-fabric-edit"
                onClick={props.onEdit}
              />
              <IconButton
                icon={deleteIcon}
                title={`Delete ${fabric.name}`}
                testId="prophecy-fabric-delete"
                onClick={props.onDelete}
              />
            </>
          )}
        </span>
      </div>
      {test ? <TestResult test={test} /> : null}
    </li>
  );
}

export function FabricsSection(
  props: IFabricsSectionProps
): React.ReactElement {
  const { project, defaultFabric } = props;
  const list = useLoader(
    () => api.fabrics(project),
    [project, props.generation]
  );
  const [editing, setEditing] = React.useState<IFabricDraft | null>(null);
  const [tests, setTests] = React.useState<Record<string, TestState>>({});
  const fabrics = list.value ?? [];

  const save = async (fabric: IFabric): Promise<boolean> => {
    try {
      await api.putFabric(project, fabric);
    } catch (error) {
      await reportError('Cannot save the fabric', error);
      return false;
    }
    setEditing(null);
    // The last test says nothing about the settings just saved.
    setTests(current => {
      const next = { ...current };
      delete next[fabric.name];
      return next;
    });
    list.reload();
    return true;
  };

  const remove = async (name: string): Promise<void> => {
    const sure = await confirmAction(
      'Delete fabric',
      `Delete the fabric “${name}” and its stored secrets?`,
      'Delete'
    );
    if (!sure) {
      return;
    }
    try {
      await api.deleteFabric(project, name);
    } catch (error) {
      await reportError('Cannot delete the fabric', error);
    }
    list.reload();
  };

  const test = async (name: string): Promise<void> => {
    setTests(current => ({ ...current, [name]: { state: 'testing' } }));
    let outcome: TestState;
    try {
      outcome = { state: 'done', result: await api.testFabric(project, name) };
    } catch (error) {
      outcome = { state: 'failed', message: errorMessage(error) };
    }
    setTests(current => ({ ...current, [name]: outcome }));
  };

  const missingDefault =
    list.value !== undefined &&
    defaultFabric !== '' &&
    !fabrics.some(fabric => fabric.name === defaultFabric);

  return (
    <Section
      id="fabrics"
      title="Fabrics"
      actions={
        <>
          <IconButton
            icon={addIcon}
            title="Add a fabric"
            testId="prophecy-add-fabric"
            disabled={editing !== null}
            onClick={() => setEditing(draftOf())}
          />
          <IconButton
            icon={refreshIcon}
            title="Refresh fabrics"
            testId="prophecy-refresh-fabrics"
            onClick={list.reload}
          />
        </>
      }
    >
      {editing ? (
        <FabricForm
          key={editing.original ?? ''}
          initial={editing}
          existingNames={fabrics.map(fabric => fabric.name)}
          onSave={save}
          onCancel={() => setEditing(null)}
        />
      ) : null}
      {list.error ? (
        <Note kind="error" testId="prophecy-fabrics-error">
          {list.error}
        </Note>
      ) : null}
      {list.loading && !list.value ? <Note>Loading…</Note> : null}
      {missingDefault ? (
        <Note kind="error" testId="prophecy-fabric-missing-default">
          The default fabric “{defaultFabric}” does not exist in this project.
        </Note>
      ) : null}
      <ul className="jp-Prophecy-list" data-testid="prophecy-fabric-list">
        {fabrics.map(fabric => (
          <FabricItem
            key={fabric.name}
            fabric={fabric}
            isDefault={fabric.name === defaultFabric}
            test={tests[fabric.name]}
            onTest={() => void test(fabric.name)}
            onEdit={() => setEditing(draftOf(fabric))}
            onDelete={() => void remove(fabric.name)}
          />
        ))}
      </ul>
    </Section>
  );
}
